(call target: (identifier) @reference.call)
(call target: (dot right: (identifier) @reference.call))
(dot left: (alias) @reference.type)
