"""`archdsl lsp`: a language server for .arch files (LSP over stdio).

document.py reads a buffer's text with the front end every command uses (parse, resolve, analyze: the
same errors, warnings and failed asserts as `archdsl check`) and places them in LSP coordinates;
features.py answers hover, inlay hints, completion, symbols and block references from that reading;
server.py is the pygls glue (the only module that imports pygls: `pip install -e ".[lsp]"`).
"""
