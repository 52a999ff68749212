"""The quality tier: code actions (generate, fix, refactor, docstring, explain) and hover explanations.

targets.py  what can be done where (tree-sitter, no model): the cheap code-action list
prompts.py  chat-template prompts from the GGUF, with a plain-completion fallback for base models
edits.py    minimal, verified replacements and their LSP ranges
runner.py   running plans on the model worker: best-of-N, explanations, the hover cache
"""
