"""A picture of `archdsl lsp` in a real editor: Neovim, in a tmux pane, on specs/best.arch.

    python scripts/screenshot_editor.py [OUT.png]      (default docs/img/editor_neovim.png)

Neovim (0.7 or later: Debian's `apt-get install neovim`) runs with a throw-away init.lua that starts
`archdsl lsp` for .arch files. Neovim before 0.10 has no inlay-hint display, so the init.lua asks the
server for the hints (textDocument/inlayHint) and shows each label at the end of its line, as 0.10's
`vim.lsp.inlay_hint` does. The spec is specs/best.arch with its params limit lowered to 70k, so that a
failed assert shows as a diagnostic. The cursor goes to line 13 and asks for the hover. tmux's capture of
the pane (its colours included) is written as HTML and photographed by headless Chromium. Needs nvim,
tmux, chromium and the `lsp` extra.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, ROWS = 150, 40
SESSION = "archdsl-screenshot"

INIT_LUA = """
vim.opt.termguicolors = true
vim.opt.number = true
vim.opt.signcolumn = "yes"
vim.cmd("colorscheme slate")
vim.cmd("syntax off")  -- Vim's own `arch` syntax is for GNU Arch inventory files, not for specs
vim.cmd("highlight SignColumn guibg=NONE")
vim.cmd("highlight NormalFloat guibg=#2b2f3a guifg=#e0e0e0")
vim.cmd("highlight FloatBorder guibg=#2b2f3a guifg=#8899aa")
vim.cmd("highlight ArchHint guifg=#8fa8c8")
vim.cmd("autocmd BufRead,BufNewFile *.arch setfiletype arch")
local ns = vim.api.nvim_create_namespace("archdsl-inlay")
local function draw_hints(buf, client)
  local last = vim.api.nvim_buf_line_count(buf)
  local params = { textDocument = vim.lsp.util.make_text_document_params(buf),
                   range = { start = { line = 0, character = 0 }, ["end"] = { line = last, character = 0 } } }
  client.request("textDocument/inlayHint", params, function(err, hints)
    if err or not hints then return end
    vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
    for _, h in ipairs(hints) do
      vim.api.nvim_buf_set_extmark(buf, ns, h.position.line, 0,
        { virt_text = { { "  " .. h.label, "ArchHint" } }, virt_text_pos = "eol" })
    end
  end, buf)
end
vim.api.nvim_create_autocmd("FileType", {
  pattern = "arch",
  callback = function(args)
    local id = vim.lsp.start_client({ name = "archdsl", cmd = { "archdsl", "lsp" }, root_dir = vim.fn.getcwd(),
      on_attach = function(client, buf) vim.defer_fn(function() draw_hints(buf, client) end, 1000) end })
    vim.lsp.buf_attach_client(args.buf, id)
  end,
})
vim.lsp.handlers["textDocument/hover"] = vim.lsp.with(vim.lsp.handlers.hover, { border = "rounded" })
"""


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def wait_for(text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in tmux("capture-pane", "-t", SESSION, "-p"):
        if time.monotonic() > deadline:
            raise SystemExit(f"error: '{text}' did not appear in Neovim within {timeout:.0f} s")
        time.sleep(0.2)


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def ansi_to_html(text: str) -> str:
    """tmux's capture (24-bit SGR colours, bold, italic, underline) as HTML spans."""
    out, style = [], {}
    for i, part in enumerate(SGR.split(text)):
        if i % 2 == 0:
            if part:
                css = ";".join(f"{k}:{v}" for k, v in style.items())
                out.append(f'<span style="{css}">{html.escape(part)}</span>' if css else html.escape(part))
            continue
        codes = [int(c) for c in part.split(";") if c] or [0]
        while codes:
            code = codes.pop(0)
            if code == 0:
                style = {}
            elif code in (38, 48) and codes[:1] == [2]:
                r, g, b = codes[1:4]
                codes = codes[4:]
                style["color" if code == 38 else "background"] = f"rgb({r},{g},{b})"
            elif code in (39, 49):
                style.pop("color" if code == 39 else "background", None)
            elif code == 1:
                style["font-weight"] = "bold"
            elif code == 22:
                style.pop("font-weight", None)
            elif code == 3:
                style["font-style"] = "italic"
            elif code == 23:
                style.pop("font-style", None)
            elif code == 4:
                style["text-decoration"] = "underline"
            elif code == 24:
                style.pop("text-decoration", None)
    return "".join(out)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs/img/editor_neovim.png").resolve()
    for tool in ("nvim", "tmux", "chromium", "archdsl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} is not installed (see this script's docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "init.lua").write_text(INIT_LUA, encoding="utf-8")
        spec = (ROOT / "specs/best.arch").read_text(encoding="utf-8").replace("params <= 80k", "params <= 70k")
        (folder / "best.arch").write_text(spec, encoding="utf-8")
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True, check=False)
        tmux("new-session", "-d", "-s", SESSION, "-x", str(COLUMNS), "-y", str(ROWS), "-c", tmp,
             f"nvim -u {folder / 'init.lua'} best.arch")
        try:
            wait_for("rf 3 ·")
            tmux("send-keys", "-t", SESSION, "13G", "")
            tmux("send-keys", "-t", SESSION, ":lua vim.lsp.buf.hover()", "Enter")
            wait_for("separable convolution")
            time.sleep(0.5)
            screen = tmux("capture-pane", "-t", SESSION, "-e", "-p")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True, check=False)
        page = folder / "screen.html"
        page.write_text(
            "<!doctype html><meta charset=utf-8><body style='margin:0;background:#262626'>"
            "<pre style='margin:0;padding:12px;font:15px/1.3 \"DejaVu Sans Mono\",monospace;color:#d0d0d0'>"
            + ansi_to_html(screen) + "</pre>", encoding="utf-8")
        width, height = COLUMNS * 9 + 24, ROWS * 20 + 24
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri()],
                       check=True, capture_output=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
