-- Drives headless Neovim 0.11 through the user's path: editors/neovim/lsp/codeassist.lua enabled with
-- vim.lsp.enable, then the real <C-x><C-o> omnifunc popup accepted with <C-y>; hover and a code action
-- when the server advertises them; the agent from the code-action menu. Results go to $CODEASSIST_RESULT as JSON; the test judges them.
-- Run as: nvim --headless --clean -u NONE -c 'luafile nvim_driver.lua' (insert-mode keys need the main loop).
local env = vim.env
local out = { steps = {} }
local buf, client

local function finish()
  local file = assert(io.open(env.CODEASSIST_RESULT, 'w'))
  file:write(vim.json.encode(out))
  file:close()
  vim.cmd('qall!')
end

local function fail(message)
  out.error = message
  finish()
end

local function step(name)
  table.insert(out.steps, name)
end

--- Call `check` every 100 ms until it returns a value, then `next` with it; fail after `timeout_ms`.
local function poll(what, timeout_ms, check, next, on_timeout)
  local deadline = vim.uv.now() + timeout_ms
  local function tick()
    local ok, value = pcall(check)
    if not ok then
      return fail(what .. ': ' .. tostring(value))
    end
    if value then
      local done, err = pcall(next, value)
      if not done then
        fail(what .. ' (after): ' .. tostring(err))
      end
      return
    end
    if vim.uv.now() > deadline then
      if on_timeout then
        return on_timeout()
      end
      return fail('timed out after ' .. timeout_ms .. ' ms: ' .. what)
    end
    vim.defer_fn(tick, 100)
  end
  vim.defer_fn(tick, 0)
end

local function feed(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), 'n', false)
end

-- The agent from the code-action menu: the config's client command asks for the instruction
-- (vim.ui.input, answered here as a user would), the server asks "Apply?" (answered Apply).
local function agent()
  step('agent')
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } },
    context = { diagnostics = {}, only = { 'refactor' }, triggerKind = 1 },
  }
  local response = client:request_sync('textDocument/codeAction', params, 10000, buf)
  local action
  for _, candidate in ipairs(response and response.result or {}) do
    if (candidate.kind or ''):find('agent') then
      action = candidate
    end
  end
  out.agentAction = action and action.title or vim.NIL
  if not action then
    return finish()
  end
  vim.ui.input = function(_, on_confirm)
    on_confirm('Rename the function add to add_numbers')
  end
  vim.lsp.handlers['window/showMessageRequest'] = function(_, request)
    out.agentAsked = request.message
    return request.actions[1]
  end
  client:exec_cmd(action.command, { bufnr = buf })
  poll('the agent\'s edit', 60000, function()
    local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
    return lines[1]:find('add_numbers') and lines
  end, function(lines)
    out.afterAgent = lines
    finish()
  end)
end

local function code_action()
  if not out.capabilities.codeAction then
    return finish()
  end
  step('codeAction')
  local before = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(buf),
    range = { start = { line = 0, character = 0 }, ['end'] = { line = 1, character = #before[2] } },
    context = { diagnostics = {}, triggerKind = 1 },
  }
  local response = client:request_sync('textDocument/codeAction', params, 10000, buf)
  if not response or response.err then
    return fail('codeAction: ' .. vim.inspect(response))
  end
  local actions = response.result or {}
  out.codeActions = vim.tbl_map(function(a) return a.title end, actions)
  out.beforeAction = before
  out.resolveErrors = {}
  -- The first action that edits the buffer (explanations only show text): resolved lazily, as
  -- Neovim 0.11 declares codeAction resolveSupport for `edit`, else through its command.
  for _, action in ipairs(actions) do
    if not (action.kind or ''):find('explain') and not (action.kind or ''):find('agent') then
      if not action.edit and action.data ~= nil and client:supports_method('codeAction/resolve') then
        local resolved = client:request_sync('codeAction/resolve', action, 180000, buf)
        if resolved and resolved.result then
          action = resolved.result
        else
          table.insert(out.resolveErrors, action.title .. ': ' .. (resolved and resolved.err and resolved.err.message or 'timeout'))
        end
      end
      if action.edit then
        out.appliedAction = action.title
        vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding)
        break
      elseif action.command then
        client:exec_cmd(action.command, { bufnr = buf })
        if vim.wait(120000, function()
          return not vim.deep_equal(before, vim.api.nvim_buf_get_lines(buf, 0, -1, false))
        end, 100) then
          out.appliedAction = action.title
          break
        end
      end
    end
  end
  out.afterAction = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  agent()
end

local function hover()
  if not out.capabilities.hover then
    return code_action()
  end
  step('hover')
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.position = { line = 0, character = 5 } -- on `add`
  local response = client:request_sync('textDocument/hover', params, 120000, buf)
  out.hover = response and response.result or vim.NIL
  out.hoverError = response and response.err and vim.inspect(response.err) or (not response and 'timeout') or nil
  code_action()
end

-- What the server inferred from the edits alone (Neovim sends no acceptance signal for menu items):
-- polled until the accept's undo window has passed and the outcome is decided.
local function feedback()
  step('feedback')
  poll('acceptance outcome (codeassist.status)', 30000, function()
    local response = client:request_sync('workspace/executeCommand',
      { command = 'codeassist.status', arguments = { { recent = true } } }, 5000, buf)
    local report = response and response.result and response.result.feedback
    return report and report.recent and #report.recent > 0 and report
  end, function(report)
    out.feedback = report
    hover()
  end)
end

local function complete(attempt)
  step('omnifunc attempt ' .. attempt)
  -- Cursor at the end of `    return ` (the file keeps the trailing space), then the omnifunc popup.
  vim.api.nvim_win_set_cursor(0, { 2, #out.before })
  feed(attempt == 1 and 'A<C-x><C-o>' or '<C-x><C-o>')
  -- An empty menu (the answer missed the server's answerWithinMs while both models were still
  -- loading) is asked again, as a user would: up to 6 times, 15 s each.
  poll('omnifunc items', attempt < 6 and 15000 or 90000, function()
    local info = vim.fn.complete_info({ 'items', 'mode' })
    if #info.items > 0 then
      return info
    end
  end, function(info)
    out.items = vim.tbl_map(function(item) return item.word end, info.items)
    out.mode = info.mode
    step('accept')
    feed('<C-y><Esc>')
    poll('back in normal mode', 5000, function() return vim.fn.mode() == 'n' end, function()
      out.after = vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1]
      feedback()
    end)
  end, attempt < 6 and function() complete(attempt + 1) end or nil)
end

local function wait_for_model()
  step('wait for model')
  poll('model ready (codeassist.status)', 120000, function()
    local response = client:request_sync('workspace/executeCommand',
      { command = 'codeassist.status', arguments = {} }, 5000, buf)
    local state = response and response.result and response.result.model.state
    if state == 'error' then
      error('model failed to load: ' .. vim.inspect(response.result.model))
    end
    return state == 'ready' and response.result
  end, function(status)
    out.model = status.model
    out.maxTokens = status.settings.completion.maxTokens
    out.before = vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1]
    complete(1)
  end)
end

-- The user's setup: the shipped config file on 'runtimepath' with its own init_options, only the
-- command overridden (this venv). Every window/showMessage is recorded: a config the server cannot
-- read shows one.
vim.cmd('filetype on')
vim.opt.runtimepath:prepend(env.CODEASSIST_NVIM_CONFIG)
out.messages = {}
vim.lsp.handlers['window/showMessage'] = function(_, result)
  table.insert(out.messages, result.message)
end
vim.lsp.config('codeassist', {
  cmd = { env.CODEASSIST_LSP, '-vv', '--log-file', env.CODEASSIST_SERVER_LOG },
})
vim.lsp.enable('codeassist')
vim.cmd.edit(vim.fn.fnameescape(env.CODEASSIST_SAMPLE))
buf = vim.api.nvim_get_current_buf()
step('attach')
poll('client attached', 30000, function()
  local found = vim.lsp.get_clients({ bufnr = buf, name = 'codeassist' })[1]
  return found and found.initialized and found
end, function(found)
  client = found
  local caps = client.server_capabilities
  out.attached = { name = client.name, root = client.root_dir, filetype = vim.bo[buf].filetype }
  out.omnifunc = vim.bo[buf].omnifunc
  out.capabilities = {
    completion = caps.completionProvider ~= nil,
    inlineCompletion = caps.inlineCompletionProvider ~= nil,
    hover = caps.hoverProvider ~= nil and caps.hoverProvider ~= false,
    codeAction = caps.codeActionProvider ~= nil and caps.codeActionProvider ~= false,
  }
  wait_for_model()
end)
