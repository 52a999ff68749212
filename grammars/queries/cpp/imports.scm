(preproc_include path: [(string_literal) (system_lib_string)] @source) @import
(using_declaration (_) @source) @import
