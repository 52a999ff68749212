"""`python -m codeassist_lsp` runs the language server."""

import sys

from codeassist_lsp.cli import serve_main

sys.exit(serve_main())
