-- graphspec lsp in Neovim 0.7 (Debian 12's): start_client + buf_attach_client, and inlay
-- hints drawn as end-of-line virtual text (Neovim 0.10 has vim.lsp.inlay_hint built in).
vim.o.termguicolors = false
vim.o.swapfile = false
local cmd = { vim.env.GRAPHSPEC or "graphspec", "lsp" }
local client_id = vim.lsp.start_client({ name = "graphspec", cmd = cmd, root_dir = vim.fn.getcwd() })
local ns = vim.api.nvim_create_namespace("graphspec_hints")
function _G.graphspec_hints()
  local buf = vim.api.nvim_get_current_buf()
  local params = { textDocument = vim.lsp.util.make_text_document_params(),
                   range = { start = { line = 0, character = 0 },
                             ["end"] = { line = vim.api.nvim_buf_line_count(buf), character = 0 } } }
  vim.lsp.get_client_by_id(client_id).request("textDocument/inlayHint", params, function(err, result)
    if err or not result then return end
    vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
    for _, h in ipairs(result) do
      local label = type(h.label) == "string" and h.label or h.label[1].value
      vim.api.nvim_buf_set_extmark(buf, ns, h.position.line, 0,
        { virt_text = { { " " .. label, "Comment" } }, virt_text_pos = "eol" })
    end
  end, buf)
end
vim.api.nvim_create_autocmd("FileType", { pattern = "yaml", callback = function(args)
  vim.lsp.buf_attach_client(args.buf, client_id)
end })
vim.api.nvim_create_autocmd({ "BufEnter", "TextChanged", "InsertLeave" }, { pattern = "*.yaml", callback = function()
  vim.defer_fn(_G.graphspec_hints, 600)
end })
