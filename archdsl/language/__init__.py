"""The language: a `.arch` file's text -> the written spec (with positions) -> the resolved IR.

    parser.parse(text, file) -> spec.Spec        grammar.lark, one statement a line
    resolve.resolve(spec)    -> ir.Model         repeats, blocks and merges expanded, defaults filled, shapes known
    formatter.format_spec(spec) -> str           `archdsl fmt`

An op's arguments are read by `options` from the op's signature in the registry (`archdsl.ops`).
No TensorFlow, graphviz or jinja2 here.
"""
