;;; graphspec-eglot.el --- `graphspec lsp' for YAML buffers, through eglot  -*- lexical-binding: t -*-

;; Load it from your init file (or copy it there).  eglot runs one server per
;; major mode: this one replaces yaml-language-server for YAML buffers.
;; tools/emacs_eglot_check.el drives it in `emacs --batch' (see docs/editor.md).

(require 'eglot)

(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs '(yaml-mode . ("graphspec" "lsp")))
  (add-to-list 'eglot-server-programs '(yaml-ts-mode . ("graphspec" "lsp"))))
(add-hook 'yaml-mode-hook #'eglot-ensure)

(provide 'graphspec-eglot)
;;; graphspec-eglot.el ends here
