(create_table_statement . (identifier) @name) @definition.table
(create_view_statement . (identifier) @name) @definition.view
(create_index_statement name: (identifier) @name) @definition.index
(create_function_statement . (identifier) @name) @definition.function
