"""Everything that turns a document and a cursor into what the model is shown."""
