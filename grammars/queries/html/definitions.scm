((element (start_tag (attribute (attribute_name) @_attribute (quoted_attribute_value (attribute_value) @name)))) @definition.element
  (#eq? @_attribute "id"))
