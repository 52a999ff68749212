(function name: (variable) @name) @definition.function
(function (variable) @name) @definition.function
(signature name: (variable) @name) @definition.signature
(adt (type) @name) @definition.type
(newtype (type) @name) @definition.type
(type_alias (type) @name) @definition.type
(class (class_head (class_name (type) @name))) @definition.class
