"""What the original Python modules do, for the compatibility tests of logging-core.

Each subcommand reads one JSON document on stdin and writes one on stdout. The logic is the
released modules' own code paths, stated as facts (the modules are not importable: they read
their environment and open AWS clients at import time); where a module used the library
amazon-kinesis-utils 0.1.8 (PyPI), the library itself is imported and called.

  curator   lambda-es-cleaner v2.0.1: which indices a run deletes.
"""
import json
import re
import sys
from datetime import datetime


def es_cleaner(doc):
    """lambda-es-cleaner v2.0.1 lambda/main.py with elasticsearch-curator 5.6.

    At import: ``max_age_days = int(os.environ['MAX_AGE_DAYS'])`` and
    ``dry_run_only = os.environ['DRY_RUN_ONLY'] in ['true', 'True', 'yes']`` (a missing
    variable raises KeyError: the function never runs). Per run:
    ``filter_by_age(source='name', direction='older', timestring='%Y%m%d', unit='days',
    unit_count=max_age_days)`` then ``filter_by_regex(kind='suffix', value='-reload',
    exclude=True)``; ``do_dry_run()`` or ``do_action()``.
    """
    env = doc["env"]
    try:
        max_age_days = int(env["MAX_AGE_DAYS"])
        dry_run_only = env["DRY_RUN_ONLY"] in ["true", "True", "yes"]
    except (KeyError, ValueError) as e:
        return {"crash": "import: %r" % e, "selected": [], "deleted": []}
    now = doc["now_epoch"]
    # curator.utils.get_point_of_reference('days', unit_count, epoch=now)
    point = now - 86400 * max_age_days
    # curator.utils.TimestringSearch('%Y%m%d'): get_date_regex gives \d{4}\d{2}\d{2}; the first
    # match anywhere in the name, strptime'd and read as UTC (datetime_to_epoch).
    pattern = re.compile(r"(?P<date>\d{4}\d{2}\d{2})")
    selected = []
    for name in doc["indices"]:
        match = pattern.search(name)
        if not match:
            continue  # no age: removed from the working list
        try:
            date = datetime.strptime(match.group("date"), "%Y%m%d")
        except ValueError as e:
            return {"crash": "run: %r" % e, "selected": [], "deleted": []}
        epoch = int((date - datetime(1970, 1, 1)).total_seconds())
        if epoch < point and not re.search(r"-reload$", name):
            selected.append(name)
    return {
        "crash": None,
        "dry_run": dry_run_only,
        "selected": selected,
        "deleted": [] if dry_run_only else selected,
    }


def es_cleaner_runs(doc):
    """Several runs of :func:`es_cleaner` (``{"runs": [...]}``), one process for all."""
    return [es_cleaner(run) for run in doc["runs"]]


COMMANDS = {"curator": es_cleaner_runs}

if __name__ == "__main__":
    out = COMMANDS[sys.argv[1]](json.load(sys.stdin))
    json.dump(out, sys.stdout)
