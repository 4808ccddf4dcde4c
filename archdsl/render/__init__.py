"""Renderers: what the IR and its analysis look like to a person or another tool.

tables (the rf table: text, JSON, CSV, Markdown), ascii and graphviz (drawings) with draw (the
command), report (an HTML or Markdown page, with charts and a run's curves), export (standalone
Keras or PyTorch source from jinja2 templates and each op's snippets). No TensorFlow here.
"""
