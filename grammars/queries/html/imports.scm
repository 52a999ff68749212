((attribute (attribute_name) @_attribute (quoted_attribute_value (attribute_value) @source)) @import
  (#match? @_attribute "^(src|href)$"))
