;;; emacs_eglot_check.el --- drive eglot against `graphspec lsp' in batch mode  -*- lexical-binding: t -*-

;; emacs --batch -l editors/emacs/graphspec-eglot.el -l tools/emacs_eglot_check.el SPEC.yaml
;;
;; Opens SPEC.yaml in `yaml-mode' (a plain derived mode where the yaml-mode package is not
;; installed), connects eglot with the server `editors/emacs/graphspec-eglot.el' names, waits
;; for the diagnostics (flymake), prints one line per diagnostic as "LINE:COL: TEXT" and exits
;; 0; exits 1 when none came within 60 seconds.

(require 'eglot)
(require 'flymake)

(unless (fboundp 'yaml-mode)
  (define-derived-mode yaml-mode text-mode "YAML" "A stand-in for the yaml-mode package."))

(let* ((file (expand-file-name (car command-line-args-left)))
       (buffer (find-file-noselect file))
       (deadline (+ (float-time) 60))
       (found nil))
  (setq command-line-args-left nil)
  (with-current-buffer buffer
    (yaml-mode)
    (remove-hook 'yaml-mode-hook #'eglot-ensure)  ; no command loop in batch mode: connect now
    (apply #'eglot (eglot--guess-contact))
    (while (and (not found) (< (float-time) deadline))
      (accept-process-output nil 0.2)
      (when (bound-and-true-p flymake-mode) (flymake-start))
      (setq found (flymake-diagnostics)))
    (dolist (d found)
      (save-excursion
        (goto-char (flymake-diagnostic-beg d))
        (princ (format "%d:%d: %s\n" (line-number-at-pos) (1+ (current-column))
                       (flymake-diagnostic-text d)))))
    (ignore-errors (eglot-shutdown (eglot-current-server))))
  (kill-emacs (if found 0 1)))
;;; emacs_eglot_check.el ends here
