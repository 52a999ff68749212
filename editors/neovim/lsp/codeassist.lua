-- codeassist: local-first AI code completion over LSP (https://github.com/neovim/nvim-lspconfig shape).
--
-- Neovim 0.11+: put this folder on 'runtimepath' (or copy this file to ~/.config/nvim/lsp/), then
--   vim.lsp.enable('codeassist')
-- Override anything with vim.lsp.config('codeassist', { cmd = {...}, init_options = {...} }).
-- init_options are the server's settings (camelCase), e.g.
--   { model = { path = '/models/x.gguf', gpuLayers = 0 }, completion = { maxTokens = 32 } }.

-- The agent (workspace/executeCommand codeassist.agent): the server asks "Apply?" before its one edit.
local function run_agent(client, bufnr, instruction)
  client:request('workspace/executeCommand',
    { command = 'codeassist.agent', arguments = { { instruction = instruction } } },
    function(err, result)
      if err then
        vim.notify('codeassist.agent: ' .. err.message, vim.log.levels.ERROR)
      elseif result then
        vim.notify('codeassist agent: ' .. (result.summary or ''), vim.log.levels.INFO)
      end
    end, bufnr)
end

---@type vim.lsp.Config
return {
  cmd = { 'codeassist-lsp' },
  filetypes = {
    'bash', 'sh', 'c', 'cpp', 'cs', 'css', 'elixir', 'go', 'haskell', 'html', 'java', 'javascript',
    'javascriptreact', 'julia', 'kotlin', 'lua', 'ocaml', 'php', 'python', 'r', 'ruby', 'rust',
    'scala', 'sql', 'typescript', 'typescriptreact',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod', 'Makefile' },
  -- The server's typed settings; everything left out keeps the server's default.
  -- vim.empty_dict(): a plain {} is sent as a JSON list, not an object.
  init_options = vim.empty_dict(),
  -- The code-action menu's "codeassist: Change the workspace…" runs this client-side command, which
  -- asks for the instruction (LSP has no request for free text); declared so the server offers it.
  capabilities = { experimental = { codeassist = { changeWorkspace = true } } },
  commands = {
    ['codeassist.changeWorkspace'] = function(_, ctx)
      vim.ui.input({ prompt = 'codeassist: what should change? ' }, function(instruction)
        local client = vim.lsp.get_client_by_id(ctx.client_id)
        if client and instruction and instruction ~= '' then
          run_agent(client, ctx.bufnr, instruction)
        end
      end)
    end,
  },
  on_attach = function(client, bufnr)
    -- :LspCodeassistStatus prints the model state and counters (workspace/executeCommand).
    vim.api.nvim_buf_create_user_command(bufnr, 'LspCodeassistStatus', function()
      client:request('workspace/executeCommand', { command = 'codeassist.status', arguments = {} },
        function(err, result)
          if err then
            vim.notify('codeassist.status: ' .. err.message, vim.log.levels.ERROR)
          else
            vim.notify(vim.inspect(result), vim.log.levels.INFO)
          end
        end, bufnr)
    end, { desc = 'codeassist: model state, settings and stats' })
    -- :LspCodeassistAgent {instruction}: one multi-file edit, applied after a yes/no question.
    vim.api.nvim_buf_create_user_command(bufnr, 'LspCodeassistAgent', function(opts)
      run_agent(client, bufnr, opts.args)
    end, { nargs = '+', desc = 'codeassist: change the workspace as instructed' })
  end,
}
