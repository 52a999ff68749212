(import (qualified_module) @source) @import
