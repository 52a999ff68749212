"""TypeScript cannot run on this Node (20, no type stripping): the check reads the code."""
import re
from pathlib import Path


def test_renamed():
    shapes, main = Path('shapes.ts').read_text(), Path('main.ts').read_text()
    assert 'export function rectangleArea(width: number, height: number): number' in shapes
    assert "import { rectangleArea } from './shapes';" in main and 'rectangleArea(4, 5)' in main
    code = re.sub(r'//.*', '', shapes + main)
    assert 'areaOf' not in code
    assert '// areaOf is documented' in main  # comments are left alone
