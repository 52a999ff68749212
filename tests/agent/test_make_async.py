"""make_async on real projects: the staged code is written out, then imported, run and tested for real."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codeassist_lsp.agent.refactor import RefactorRefused, make_async, make_module_async
from codeassist_lsp.agent.workspace import StagedWorkspace

USERS = "import time\n\n\ndef load_user(user_id):\n    time.sleep(0.01)\n    return {'id': user_id}\n"
VIEWS = ("from users import load_user\n\n\ndef profile(user_id):\n    user = load_user(user_id)\n"
         "    return 'user ' + str(user['id'])\n")


def make_project(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def staged_copy(workspace: StagedWorkspace, folder: Path) -> Path:
    """The project as it would be once the edit is applied, in a folder of its own."""
    shutil.copytree(workspace.root, folder)
    for path, (_, text) in workspace.changed().items():
        (folder / path).write_text(text)
    return folder


def run_python(folder: Path, code: str) -> str:
    script = f"import sys\nsys.path.insert(0, {str(folder)!r})\n{code}"
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, check=False, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_load_user_and_its_caller_become_async_and_run(tmp_path: Path) -> None:
    folder = make_project(tmp_path / "project", {"users.py": USERS, "views.py": VIEWS})
    before = {p.name: p.read_text() for p in folder.iterdir()}
    workspace = StagedWorkspace(folder)
    assert make_async(workspace, "load_user") == ["users.py", "views.py"]
    assert {p.name: p.read_text() for p in folder.iterdir()} == before  # staged, never written
    users, views = workspace.read("users.py"), workspace.read("views.py")
    assert users.startswith("import asyncio\nimport time\n")
    assert "async def load_user(user_id):\n    await asyncio.sleep(0.01)\n" in users
    assert "async def profile(user_id):\n    user = await load_user(user_id)\n" in views
    assert "import asyncio" not in views  # nothing there needs it
    out = staged_copy(workspace, tmp_path / "out")
    printed = run_python(out, "import asyncio, inspect, users, views\n"
                              "print(inspect.iscoroutinefunction(users.load_user),"
                              " inspect.iscoroutinefunction(views.profile), asyncio.run(views.profile(7)))")
    assert printed.split() == ["True", "True", "user", "7"]


def test_an_awaited_call_that_is_then_subscripted_is_parenthesised(tmp_path: Path) -> None:
    views = "from users import load_user\n\n\ndef user_id():\n    return load_user(1)['id']\n"
    folder = make_project(tmp_path / "project", {"users.py": USERS, "views.py": views})
    workspace = StagedWorkspace(folder)
    make_async(workspace, "load_user")
    assert "    return (await load_user(1))['id']\n" in workspace.read("views.py")
    out = staged_copy(workspace, tmp_path / "out")
    assert run_python(out, "import asyncio, views\nprint(asyncio.run(views.user_id()))").strip() == "1"


def test_callers_turn_async_transitively_and_tests_run_the_coroutine(tmp_path: Path) -> None:
    files = {
        "users.py": USERS,
        "views.py": VIEWS,
        "pages.py": "from views import profile\n\n\ndef page(user_id):\n    return '<p>' + profile(user_id) + '</p>'\n",
        "test_views.py": ("from pages import page\nfrom views import profile\n\n\n"
                          "def test_profile():\n    assert profile(7) == 'user 7'\n\n\n"
                          "def test_page():\n    assert page(2) == '<p>user 2</p>'\n"),
    }
    folder = make_project(tmp_path / "project", files)
    workspace = StagedWorkspace(folder)
    assert make_async(workspace, "load_user") == ["pages.py", "test_views.py", "users.py", "views.py"]
    assert "async def page(user_id):\n    return '<p>' + await profile(user_id) + '</p>'" in workspace.read("pages.py")
    tests = workspace.read("test_views.py")
    assert tests.startswith("import asyncio\nfrom pages import page\n")
    assert "def test_profile():\n    assert asyncio.run(profile(7)) == 'user 7'" in tests
    assert "def test_page():\n    assert asyncio.run(page(2)) == '<p>user 2</p>'" in tests
    assert "async def test" not in tests  # pytest without plugins would not run an async test
    out = staged_copy(workspace, tmp_path / "out")
    # No pytest-asyncio: the tests must run as plain pytest would run them.
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
                           "test_views.py"], cwd=out, capture_output=True, check=False, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_a_module_level_call_runs_the_coroutine(tmp_path: Path) -> None:
    script = '"""Print one user."""\n\nfrom users import load_user\n\nprint(load_user(5)["id"])\n'
    folder = make_project(tmp_path / "project", {"users.py": USERS, "show.py": script})
    workspace = StagedWorkspace(folder)
    make_async(workspace, "load_user")
    assert workspace.read("show.py") == ('"""Print one user."""\n\nimport asyncio\nfrom users import load_user\n\n'
                                         'print(asyncio.run(load_user(5))["id"])\n')
    out = staged_copy(workspace, tmp_path / "out")
    assert run_python(out, "import show").strip() == "5"


@pytest.mark.parametrize(("files", "reason"), [
    ({"views.py": "from users import load_user\n\nnames = sorted([1, 2], key=lambda i: load_user(i)['id'])\n"},
     "lambda"),
    ({"other.py": "def load_user(user_id):\n    return None\n"}, "defined 2 times"),
    ({"views.py": "from users import load_user\n\nHANDLERS = [load_user]\n"}, "without being called"),
    ({"views.py": "from users import load_user as fetch\n\n\ndef f():\n    return fetch(1)\n"}, "imported as 'fetch'"),
])
def test_what_cannot_be_awaited_is_refused_and_nothing_is_staged(tmp_path: Path, files: dict[str, str],
                                                                 reason: str) -> None:
    # A caller first in file order is converted before the refusal is found: still nothing may be staged.
    caller = {"a_caller.py": "from users import load_user\n\n\ndef first():\n    return load_user(1)\n"}
    workspace = StagedWorkspace(make_project(tmp_path / "project", {"users.py": USERS, **caller, **files}))
    with pytest.raises(RefactorRefused, match=reason):
        make_async(workspace, "load_user")
    assert workspace.changed() == {}


def test_a_parameter_of_the_same_name_is_not_awaited(tmp_path: Path) -> None:
    other = "def apply(load_user):\n    return load_user(1)\n"
    workspace = StagedWorkspace(make_project(tmp_path / "project", {"users.py": USERS, "other.py": other}))
    assert make_async(workspace, "load_user") == ["users.py"]


def test_more_than_twenty_functions_to_convert_is_refused(tmp_path: Path) -> None:
    chain = "".join(f"\n\ndef f{i}():\n    return {f'f{i - 1}()' if i else 'load_user(1)'}\n" for i in range(21))
    workspace = StagedWorkspace(make_project(tmp_path / "project", {"users.py": USERS + chain}))
    with pytest.raises(RefactorRefused, match="more than 20"):
        make_async(workspace, "load_user")
    assert workspace.changed() == {}


def test_an_async_function_is_refused(tmp_path: Path) -> None:
    users = "import asyncio\n\n\nasync def load_user(user_id):\n    return {'id': user_id}\n"
    workspace = StagedWorkspace(make_project(tmp_path / "project", {"users.py": users}))
    with pytest.raises(RefactorRefused, match="already async"):
        make_async(workspace, "load_user")
    assert workspace.changed() == {}


STATS = "function load(id) {\n  return { id };\n}\n\nmodule.exports = { load };\n"
APP = ("const { load } = require('./stats');\n\nfunction show(id) {\n  return load(id).id;\n}\n\n"
       "module.exports = { show };\n")
APP_TEST = ("const test = require('node:test');\nconst assert = require('node:assert');\n"
            "const { show } = require('./app');\n\ntest('show', () => {\n  assert.strictEqual(show(7), 7);\n});\n")


def test_javascript_callers_and_test_callbacks_become_async(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    folder = make_project(tmp_path / "project", {"stats.js": STATS, "app.js": APP, "app.test.js": APP_TEST})
    workspace = StagedWorkspace(folder)
    assert make_async(workspace, "load") == ["app.js", "app.test.js", "stats.js"]
    assert "async function load(id) {" in workspace.read("stats.js")
    assert "async function show(id) {\n  return (await load(id)).id;\n}" in workspace.read("app.js")
    assert "test('show', async () => {\n  assert.strictEqual(await show(7), 7);" in workspace.read("app.test.js")
    out = staged_copy(workspace, tmp_path / "out")
    done = subprocess.run(["node", "--test", "app.test.js"], cwd=out, capture_output=True, check=False, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 1" in done.stdout


def test_a_javascript_call_outside_any_function_is_refused(tmp_path: Path) -> None:
    main = "const { load } = require('./stats');\n\nconsole.log(load(1).id);\n"
    workspace = StagedWorkspace(make_project(tmp_path / "project", {"stats.js": STATS, "main.js": main}))
    with pytest.raises(RefactorRefused, match="outside any function"):
        make_async(workspace, "load")
    assert workspace.changed() == {}


NET = ("import time\n\n\ndef fetch(url):\n    time.sleep(0.01)\n    return 'page ' + url\n\n\n"
       "def fetch_all(urls):\n    return [fetch(u) for u in urls]\n\n\n"
       "def ping(host):\n    time.sleep(0.01)\n    return host + ' up'\n\n\n"
       "def slug(url):\n    return url.strip('/').replace('/', '-')\n")
NET_APP = ("from net import fetch_all, ping, slug\n\n\n"
       "def report(urls):\n    return {'pages': fetch_all(urls), 'ok': ping('db'), 'slug': slug(urls[0])}\n")


def test_a_modules_blocking_functions_become_async_together_and_pure_ones_stay(tmp_path: Path) -> None:
    folder = make_project(tmp_path / "project", {"net.py": NET, "app.py": NET_APP})
    workspace = StagedWorkspace(folder)
    assert sorted(make_module_async(workspace, "net.py")) == ["app.py", "net.py"]
    net = workspace.read("net.py")
    assert "async def fetch(url)" in net and "async def ping(host)" in net
    assert "async def fetch_all(urls):\n    return [await fetch(u) for u in urls]" in net  # a caller, in turn
    assert "\ndef slug(url)" in net  # no blocking call: stays synchronous
    out = staged_copy(workspace, tmp_path / "out")
    printed = run_python(out, "import asyncio, app\nprint(asyncio.run(app.report(['a/b'])))")
    assert printed.strip() == "{'pages': ['page a/b'], 'ok': 'db up', 'slug': 'a-b'}"


def test_a_module_conversion_refused_half_way_stages_nothing(tmp_path: Path) -> None:
    # ping is passed as a value in app.py: converting it is refused after fetch was converted.
    app = "from net import fetch, ping\n\n\ndef show(url):\n    return fetch(url)\n\n\nCHECKS = [ping]\n"
    folder = make_project(tmp_path / "project", {"net.py": NET, "app.py": app})
    workspace = StagedWorkspace(folder)
    with pytest.raises(RefactorRefused, match="ping"):
        make_module_async(workspace, "net.py")
    assert workspace.changed() == {}


def test_a_module_without_blocking_calls_is_refused(tmp_path: Path) -> None:
    folder = make_project(tmp_path / "project", {"text.py": "def slug(url):\n    return url.lower()\n"})
    with pytest.raises(RefactorRefused, match="blocking call"):
        make_module_async(StagedWorkspace(folder), "text.py")
