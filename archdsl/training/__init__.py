"""Training and evaluation: data, the input pipeline, runs, checkpoints, schedules, distribution, eval.

train (the command and the loop's set-up), data / image_folder / image_decode (datasets from an
archive, a folder or the CIFAR-10 download), pipeline (tf.data), checkpoints, schedules, whitening,
distribute / cluster (tf.distribute strategies and their peers), evaluate (`archdsl eval`).
"""
