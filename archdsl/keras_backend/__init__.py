"""The Keras back-end: the IR compiled to a tf.keras model, and its receptive fields measured.

compile (the functional model, each op building its own layers), batchnorm (the fused batch norm
`archdsl train` builds), verify and linear_twin (`rf --verify`: the receptive fields of the built
model, measured by back-propagation through its linear, positive twin).
"""
