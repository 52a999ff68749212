(tag_name) @reference.tag
((attribute (attribute_name) @_attribute (quoted_attribute_value (attribute_value) @reference.class))
  (#eq? @_attribute "class"))
