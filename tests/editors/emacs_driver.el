;;; emacs_driver.el --- drives Emacs + eglot through editors/emacs/codeassist-eglot.el  -*- lexical-binding: t -*-
;; Run as: emacs --batch -l emacs_driver.el (batch loads Debian's site-start, which finds elpa-eglot).
;; Writes a JSON report to $CODEASSIST_RESULT; the pytest test judges it.

(require 'json)
(defvar codeassist-report nil)

(defun codeassist-report (key value)
  (setq codeassist-report (plist-put codeassist-report key value)))

(defun codeassist-finish (&optional error-message)
  (when error-message (codeassist-report :error error-message))
  (with-temp-file (getenv "CODEASSIST_RESULT")
    (insert (json-encode codeassist-report)))
  (kill-emacs 0))

(defun codeassist-wait (what seconds predicate)
  "Process events until PREDICATE returns non-nil (its value); fail after SECONDS."
  (let ((deadline (+ (float-time) seconds)) value)
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (or value (codeassist-finish (format "timed out after %s s: %s" seconds what)))))

(condition-case err
    (progn
      (load (expand-file-name "editors/emacs/codeassist-eglot.el" (getenv "CODEASSIST_REPO")))
      (setq codeassist-eglot-command
            (list (getenv "CODEASSIST_LSP") "-vv" "--log-file" (getenv "CODEASSIST_SERVER_LOG")))
      (codeassist-report :emacs emacs-version)
      ;; The first completion can take a while on a busy 2-core machine (eglot's default is 10 s).
      (setq jsonrpc-default-request-timeout 120)
      ;; Server settings the way a user gives them (workspace/didChangeConfiguration on connect).
      (setq-default eglot-workspace-configuration '(:codeassist (:completion (:maxTokens 20))))
      (find-file (getenv "CODEASSIST_SAMPLE"))
      (codeassist-report :mode (symbol-name major-mode))
      (call-interactively #'eglot)
      (let* ((server (codeassist-wait "eglot connected" 30 #'eglot-current-server))
             (caps (eglot--capabilities server)))
        (codeassist-report :server (plist-get (eglot--server-info server) :name))
        (codeassist-report :completionProvider (and (plist-get caps :completionProvider) t))
        (codeassist-report :capf (and (memq #'eglot-completion-at-point completion-at-point-functions) t))
        (let ((status (codeassist-wait
                       "model ready (codeassist.status)" 120
                       (lambda ()
                         (let* ((report (jsonrpc-request server :workspace/executeCommand
                                                         '(:command "codeassist.status" :arguments [])))
                                (state (plist-get (plist-get report :model) :state)))
                           (when (equal state "error")
                             (codeassist-finish (format "model failed to load: %S" (plist-get report :model))))
                           (and (equal state "ready") report))))))
          (codeassist-report :model (plist-get (plist-get status :model) :state))
          (codeassist-report :maxTokens (plist-get (plist-get (plist-get status :settings) :completion) :maxTokens))))
      ;; The cursor at the end of `    return ' (trailing space kept), then completion-at-point:
      ;; one candidate is inserted directly, its textEdit applied by eglot's exit function.
      (goto-char (point-min))
      (forward-line 1)
      (end-of-line)
      (codeassist-report :before (buffer-substring (line-beginning-position) (line-end-position)))
      (let ((attempts 0))
        (while (and (< attempts 3)
                    (equal (buffer-substring (line-beginning-position) (line-end-position))
                           (plist-get codeassist-report :before)))
          (setq attempts (1+ attempts))
          (completion-at-point)
          (accept-process-output nil 0.2))
        (codeassist-report :attempts attempts))
      (codeassist-report :after (buffer-substring (line-beginning-position) (line-end-position)))
      (codeassist-finish))
  (error (codeassist-finish (format "%S" err))))
