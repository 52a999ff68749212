((command name: (command_name (word) @_command) argument: (_) @source) @import
  (#match? @_command "^(source|\\.)$"))
