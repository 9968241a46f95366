"""Run by tests/mutation.sh: mutmut over each core module against its own fast tests, and the
score per module. Not a test module (pytest does not collect it).

Each module runs in a work folder of its own, ``.mutation/<module>/`` (a copy of the project
whose ``[tool.mutmut]`` names only that module and its tests), so mutmut's cache of results
survives between runs and a module's mutants run only the tests chosen for it.

Mutants of functions that run at import time (``[tool.tracker-mutation.import-time]``) are run a
second time in fresh processes; see pyproject.toml.

A survivor listed in ``[tool.tracker-mutation.equivalent]`` (mutant name -> why no test can tell
it apart) is left out of the score; every other survivor is a test to write.
"""

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}
MISSED = {"survived", "no tests", "suspicious", "skipped"}
UNCHECKED = "not checked"  # a run cut short (or --only): neither caught nor missed
RESULT_LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")


FORKSERVER = {
    "process_isolation": "forkserver",
    "forkserver_warmup": "import",
    "preload_modules_file": "tests/mutation_preload.txt",
}


def config():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return data["tool"]["mutmut"], data["tool"]["tracker-mutation"]


def module_name(path):
    """``tracker/postbacks/templates.py`` -> ``tracker.postbacks.templates`` (mutmut's prefix)."""
    return path.removesuffix(".py").replace("/", ".")


def toml_value(value):
    return json.dumps(value, ensure_ascii=False)  # strings, lists of strings, numbers: valid TOML


def pyproject_for(module, tests, base, extra=None):
    """The project's pyproject.toml with a ``[tool.mutmut]`` naming only ``module`` and ``tests``."""
    settings = {**base, "only_mutate": [module], "pytest_add_cli_args_test_selection": tests, **(extra or {})}
    section = "[tool.mutmut]\n" + "".join("%s = %s\n" % (k, toml_value(v)) for k, v in settings.items())
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    return re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[)", section + "\n", text)


def sync(work, module, tests, base):
    """Copy the project (what git would keep) into ``work``; keep mutmut's ``mutants/`` there."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["rsync", "-a", "--delete", "--exclude=/.git", "--exclude=/.mutation", "--exclude=/mutants",
         "--filter=:- .gitignore", "./", str(work) + "/"],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    (work / "pyproject.toml").write_text(pyproject_for(module, tests, base), "utf-8")


def children():
    """Two mutmut workers on SQLite (each test has its own file); one on PostgreSQL, where the
    tests of one process share one database and two workers would fail each other's tests."""
    return "1" if os.environ.get("TRACKER_TEST_DATABASE_URL") else "2"


def mutmut_run(work, names=()):
    with open(work / "mutmut-run.log", "a") as log:
        command = ["mutmut", "run", "--max-children", children(), *names]
        return subprocess.run(command, cwd=work, stdout=log, stderr=log)


def rerun_import_time(work, module, tests, base, import_time, found):
    """Run the mutants of import-time functions again against the module's tests in the files
    ``import_time["tests"]``, each in a worker that imports the project after its mutant is chosen."""
    prefix = module_name(module)
    keys = {"%s.x_%s" % (prefix, f) for f in import_time["functions"]}
    files = tuple(path + "::" for path in import_time["tests"])
    names = [n for n, s in found.items() if n.split("__mutmut_")[0] in keys and s not in CAUGHT]
    if not names:
        return
    stats_path = work / "mutants" / "mutmut-stats.json"
    stats = json.loads(stats_path.read_text("utf-8"))
    by_function = stats["tests_by_mangled_function_name"]
    reaching = sorted(
        {t for k, ts in by_function.items() if k.startswith(prefix + ".") for t in ts if t.startswith(files)}
    )
    for key in keys:
        by_function[key] = reaching
    stats_path.write_text(json.dumps(stats), "utf-8")
    (work / "pyproject.toml").write_text(pyproject_for(module, tests, base, FORKSERVER), "utf-8")
    print("  %d mutants of import-time functions again, in fresh processes" % len(names), flush=True)
    mutmut_run(work, names)
    (work / "pyproject.toml").write_text(pyproject_for(module, tests, base), "utf-8")


def results(work, prefix):
    out = subprocess.run(
        ["mutmut", "results", "--all", "true"], cwd=work, check=True, capture_output=True, text=True
    ).stdout
    found = {}
    for line in out.splitlines():
        match = RESULT_LINE.match(line)
        if match and match["name"].startswith(prefix + "."):
            found[match["name"]] = match["status"].strip()
    return found


def show(work, name):
    return subprocess.run(["mutmut", "show", name], cwd=work, capture_output=True, text=True).stdout


def commit():
    """The commit the work tree is at, and whether the code or tests differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "tracker", "tests"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def only_patterns(module, only):
    """``--only`` patterns as mutmut takes them: a function's name (``run_report``,
    ``ReportQuery.period``) or an fnmatch pattern over mutant names."""
    prefix = module_name(module)
    patterns = []
    for item in only:
        if item.startswith(prefix + "."):
            patterns.append(item)
        elif "." in item:  # Class.method
            cls, method = item.split(".", 1)
            patterns.append("%s.x\u01c1%s\u01c1%s__mutmut_*" % (prefix, cls, method))
        else:
            patterns.append("%s.x_%s__mutmut_*" % (prefix, item))
    return patterns


def run_module(module, tests, base, settings, print_diffs, only=()):
    equivalent = settings.get("equivalent", {})
    work = WORK / module.removesuffix(".py").replace("/", "-")
    measured_on = commit()
    sync(work, module, tests, base)
    (work / "mutmut-run.log").unlink(missing_ok=True)
    print("== %s against %s (work folder %s)" % (module, " ".join(tests), work.relative_to(ROOT)), flush=True)
    started = time.monotonic()
    before = results(work, module_name(module)) if (work / "mutants").exists() else {}
    run = mutmut_run(work, only_patterns(module, only))
    found = results(work, module_name(module))
    # mutmut keeps a survivor's verdict while its function is unchanged: try the survivors again
    # against the tests as they are now (a test written for one since the last run kills it).
    again = [n for n, s in found.items() if s in MISSED and before.get(n) == s and n not in equivalent]
    if again and run.returncode == 0:
        print("  %d survivors of the last run again, against today's tests" % len(again), flush=True)
        mutmut_run(work, again)
        found = results(work, module_name(module))
    import_time = settings.get("import-time", {}).get(module)
    if import_time and found:
        rerun_import_time(work, module, tests, base, import_time, found)
        found = results(work, module_name(module))
    elapsed = time.monotonic() - started
    if run.returncode != 0 and not found:
        print((work / "mutmut-run.log").read_text("utf-8", "replace")[-3000:])
        return {"module": module, "error": "mutmut run exited %d" % run.returncode}
    unknown = {n: s for n, s in found.items() if s not in CAUGHT | MISSED | {UNCHECKED}}
    checked = sum(1 for s in found.values() if s != UNCHECKED)
    caught = sum(1 for s in found.values() if s in CAUGHT)
    missed = sorted(n for n, s in found.items() if s in MISSED)
    excused = [n for n in missed if n in equivalent]
    survivors = [n for n in missed if n not in equivalent]
    stale = sorted(
        n for n in equivalent if n.startswith(module_name(module) + ".") and found.get(n) not in MISSED
    )
    for name in survivors:
        print("  survived: %s (%s)" % (name, found[name]))
        if print_diffs:
            print(show(work, name))
    for name in stale:
        print("  equivalent entry no longer a survivor (remove it): %s -> %s" % (name, found.get(name)))
    for name, status in unknown.items():
        print("  not scored: %s (%s)" % (name, status))
    scored = caught + len(survivors)
    return {
        "module": module,
        "mutants": len(found),
        "checked": checked,
        "caught": caught,
        "equivalent": len(excused),
        "survived": len(survivors),
        "score": 100.0 * caught / scored if scored else None,
        "seconds": elapsed,
        "commit": measured_on,
    }


def main(argv):
    print_diffs = "--show" in argv
    only = [p for a in argv if a.startswith("--only=") for p in a[len("--only=") :].split(",") if p]
    wanted = [a for a in argv if a != "--show" and not a.startswith("--only=")]
    base, settings = config()
    modules = settings["modules"]
    base = {k: v for k, v in base.items() if k not in ("only_mutate", "pytest_add_cli_args_test_selection")}
    unknown = [m for m in wanted if m not in modules]
    if unknown:
        sys.exit("not a core module of [tool.tracker-mutation.modules]: %s" % ", ".join(unknown))
    rows = [run_module(m, modules[m], base, settings, print_diffs, only) for m in (wanted or modules)]
    print()
    print("Mutation score per module (%s)" % time.strftime("%Y-%m-%d %H:%M %Z"))
    print("| module | commit | mutants | checked | caught | equivalent | survived | score | time |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "error" in row:
            print("| `%s` | | %s | | | | | | |" % (row["module"], row["error"]))
            continue
        score = "n/a (no functions)" if row["score"] is None else "%.1f %%" % row["score"]
        print(
            "| `%s` | %s | %d | %d | %d | %d | %d | %s | %d s |"
            % (row["module"], row["commit"], row["mutants"], row["checked"], row["caught"],
               row["equivalent"], row["survived"], score, row["seconds"])
        )  # fmt: skip
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
