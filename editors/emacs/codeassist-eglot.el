;;; codeassist-eglot.el --- codeassist (local AI completion) with eglot  -*- lexical-binding: t -*-

;; Copy into your init file, or (load "/path/to/editors/emacs/codeassist-eglot.el").
;; Then M-x eglot in a buffer (or (add-hook 'python-mode-hook #'eglot-ensure)); suggestions come
;; through completion-at-point (M-TAB / C-M-i; corfu and company show them as you type).

(require 'eglot)

(defvar codeassist-eglot-command '("codeassist-lsp")
  "How to start the server, e.g. (\"/path/to/.venv/bin/codeassist-lsp\").")

(defvar codeassist-eglot-modes
  '(python-mode python-ts-mode js-mode js-ts-mode typescript-mode typescript-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode c-mode c-ts-mode c++-mode c++-ts-mode
    java-mode java-ts-mode ruby-mode ruby-ts-mode sh-mode bash-ts-mode lua-mode)
  "Major modes where eglot starts codeassist.")

;; A function, so a later change of `codeassist-eglot-command' is picked up by the next M-x eglot.
(add-to-list 'eglot-server-programs
             (cons codeassist-eglot-modes (lambda (&rest _) codeassist-eglot-command)))

;; Server settings (camelCase, the same as the VS Code settings without the `codeassist.' prefix)
;; are sent with workspace/didChangeConfiguration, e.g. in .dir-locals.el or your init file:
;; (setq-default eglot-workspace-configuration
;;               '(:codeassist (:completion (:maxTokens 32) :model (:gpuLayers 0))))

(provide 'codeassist-eglot)
;;; codeassist-eglot.el ends here
