"""What the original Python modules do, for the compatibility tests of logging-core.

Each subcommand reads one JSON document on stdin and writes one on stdout. The logic is the
released modules' own code paths, stated as facts (the modules are not importable: they read
their environment and open AWS clients at import time); where a module used the library
amazon-kinesis-utils 0.1.8 (PyPI), the library itself is imported and called.

  curator    lambda-es-cleaner v2.0.1: which indices a run deletes.
  to_s3      kinesis-to-s3 v2.0.1: the objects a batch becomes (keys and records).
  forward    kinesis-forward v2.0.8 (amazon-kinesis-utils 0.1.8): what is forwarded and what
             is set aside as failed.
  to_es      kinesis-to-es v2.0.2: the documents and their indices, and the failures.
  to_fluent  kinesis-to-fluent v0.1.0: the events sent (tag, time, record).

Every Kinesis module decodes the batch with amazon-kinesis-utils 0.1.8's
``kinesis.parse_records`` (base64, KPL deaggregation by aws_kinesis_agg, gzip, CloudWatch Logs
subscription messages), which is what the library-era releases ran and what the earlier ones
did inline.
"""
import datetime as dt
import json
import os
import re
import sys
import time
import urllib.parse
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


class Crash(Exception):
    """The original function raised: Lambda retried the whole batch."""


def set_tz(env):
    os.environ["TZ"] = env.get("TZ") or "UTC"
    time.tzset()


def payloads(event):
    from amazon_kinesis_utils import kinesis

    return list(kinesis.parse_records(event["Records"]))


def first_timestamp(value):
    """append_to_dict / append_to_log_dict: dateutil for the first record of a type; a value
    that is not a string falls back to now (TypeError); an unparseable string raises."""
    import dateutil.parser

    if value is None or value == "" or value is False:
        return None
    try:
        return dateutil.parser.parse(value)
    except TypeError:
        return None
    except ValueError as e:
        raise Crash("dateutil could not parse %r: %s" % (value, e))


def to_s3(doc):
    """terraform-aws-lambda-kinesis-to-s3 v2.0.1 lambda/main.py (decode_validate,
    append_to_dict, upload_by_type). v2.1.0 and v2.1.1 call the library with its arguments
    swapped and upload only the failed dictionary to the bucket "", so they wrote nothing."""
    env = doc["env"]
    set_tz(env)
    prefix = env["LOG_S3_PREFIX"]
    id_field = env["LOG_ID_FIELD"]
    type_field = env["LOG_TYPE_FIELD"]
    ts_field = env["LOG_TIMESTAMP_FIELD"]
    unknown = env["LOG_TYPE_UNKNOWN_PREFIX"]
    groups = {}
    order = []
    try:
        for payload in payloads(doc["event"]):
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if type(record) is not dict:
                continue
            log_id = record.setdefault(id_field, None)
            if type_field in record:
                log_type = record[type_field]
            else:
                log_type = "%s/unknown_type" % unknown
            timestamp = None
            if ts_field in record:
                timestamp = record[ts_field]
            else:
                if not log_type.startswith(unknown):
                    log_type = "%s/%s" % (unknown, log_type)
                log_type += "_no_timestamp"
            if log_type not in groups:
                first = first_timestamp(timestamp)
                groups[log_type] = {
                    "first": first,
                    "first_id": log_id,
                    "records": [],
                }
                order.append(log_type)
            groups[log_type]["records"].append(record)
    except Crash as e:
        return {"crash": str(e), "objects": []}
    objects = []
    for log_type in order:
        g = groups[log_type]
        first = g["first"]
        key = prefix + "/" + log_type + "/"
        if first is None:
            time_part = None  # datetime.now(): not reproducible
        else:
            time_part = first.strftime("%Y-%m/%d/%Y-%m-%d-%H:%M:%S-")
        objects.append(
            {
                "folder": key,
                "time": time_part,
                "id": urllib.parse.quote(g["first_id"]) if g["first_id"] else None,
                "key": None
                if time_part is None or not g["first_id"]
                else key + time_part + urllib.parse.quote(g["first_id"]) + ".gz",
                "lines": [json.dumps(r) for r in g["records"]],
            }
        )
    return {"crash": None, "objects": objects}


def forward(doc):
    """terraform-aws-lambda-kinesis-forward v2.0.8 lambda/main.py, which calls
    amazon-kinesis-utils 0.1.8's baikonur_logging.parse_payload_to_log_dict with
    timestamp_required=False and forwards json.dumps of every record of log_dict."""
    from amazon_kinesis_utils import baikonur_logging

    env = doc["env"]
    set_tz(env)
    whitelist_tmp = str(env["LOG_TYPE_WHITELIST"]).split(",")
    whitelist = set() if len(whitelist_tmp) == 0 else set(whitelist_tmp)
    log_dict = {}
    failed_dict = {}
    try:
        for payload in payloads(doc["event"]):
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                continue
            try:
                baikonur_logging.parse_payload_to_log_dict(
                    record,
                    log_dict,
                    failed_dict=failed_dict,
                    log_id_key=env["LOG_ID_FIELD"],
                    log_timestamp_key=env["LOG_TIMESTAMP_FIELD"],
                    log_type_key=env["LOG_TYPE_FIELD"],
                    log_type_unknown_prefix=env["LOG_TYPE_UNKNOWN_PREFIX"],
                    log_type_whitelist=whitelist,
                    timestamp_required=False,
                )
            except ValueError as e:
                raise Crash(str(e))
    except Crash as e:
        return {"crash": str(e), "forwarded": [], "failed": {}}
    forwarded = []
    for key in log_dict:
        forwarded.extend(json.dumps(x) for x in log_dict[key]["records"])
    failed = {k: [json.dumps(x) for x in v["records"]] for k, v in failed_dict.items()}
    return {"crash": None, "forwarded": forwarded, "failed": failed}


def to_es(doc):
    """terraform-aws-lambda-kinesis-to-es v2.0.2 lambda/main.py (the handler's loop and
    bad_data_save). v2.1.0 iterates a dict as pairs and fails on every batch with records."""
    import dateutil.parser

    env = doc["env"]
    set_tz(env)
    type_field = env["LOG_TYPE_FIELD"]
    ts_field = env["LOG_TIMESTAMP_FIELD"]
    whitelist_env = str(env["LOG_TYPE_WHITELIST"])
    whitelist = set() if whitelist_env == "" else set(whitelist_env.split(","))
    prefix = env["INDEX_NAME_PREFIX"]
    docs, failed_type, failed_timestamp = [], [], []
    try:
        for payload in payloads(doc["event"]):
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if type(record) is not dict:
                continue
            if type_field not in record:
                failed_type.append(json.dumps(record))
                continue
            log_type = record[type_field]
            if len(whitelist) != 0 and log_type not in whitelist:
                continue
            if ts_field not in record:
                failed_timestamp.append(json.dumps(record))
                continue
            try:
                timestamp = dateutil.parser.parse(record[ts_field])
            except (TypeError, ValueError) as e:
                raise Crash("dateutil: %s" % e)
            index = "%s-%s-%s" % (prefix, log_type, dt.datetime.strftime(timestamp, "%Y%m%d"))
            docs.append([index, json.dumps(record)])
    except Crash as e:
        return {"crash": str(e), "docs": [], "failed": []}
    return {
        "crash": None,
        "docs": docs,
        "failed": failed_type + failed_timestamp,
        "failed_folder": env["FAILED_LOG_S3_PREFIX"] + "/",
    }


def to_fluent(doc):
    """terraform-aws-lambda-kinesis-to-fluent v0.1.0 lambda/main.py (decode_validate,
    apply_whitelist, send_by_type; fluent-logger joins tag and label with '.')."""
    import dateutil.parser

    env = doc["env"]
    set_tz(env)
    type_field = env["LOG_TYPE_FIELD"]
    ts_field = env["LOG_TIMESTAMP_FIELD"]
    label = env["LOG_FLUENT_TAG"]
    whitelist = set(str(env["LOG_TYPE_WHITELIST"]).split(","))
    log_dict = {}
    try:
        for payload in payloads(doc["event"]):
            try:
                record = json.loads(payload)
            except json.JSONDecodeError:
                continue
            if type(record) is not dict:
                continue  # (v0.1.0 raised on a non-dict; the library skips it)
            if type_field not in record:
                continue
            log_type = record[type_field]
            if ts_field not in record:
                log_type += "_no_timestamp"
                timestamp = None
            else:
                timestamp = record[ts_field]
            if log_type not in log_dict:
                first_timestamp(timestamp)
                log_dict[log_type] = []
            log_dict[log_type].append(record)
    except Crash as e:
        return {"crash": str(e), "events": []}
    if not (len(whitelist) == 0 or whitelist == [""]):
        log_dict = {k: log_dict[k] for k in whitelist if k in log_dict}
    events = []
    for log_type, records in log_dict.items():
        tag = "%s.%s" % (log_type, label) if label else log_type
        for record in records:
            try:
                t = dateutil.parser.parse(record[ts_field])
                timestamp = int(time.mktime(t.timetuple()))
            except (KeyError, ValueError, TypeError):
                timestamp = None  # time.time()
            events.append(
                {"tag": tag, "time": timestamp, "record": {"message": json.dumps(record)}}
            )
    return {"crash": None, "events": events}


def es_cleaner_runs(doc):
    """Several runs of :func:`es_cleaner` (``{"runs": [...]}``), one process for all."""
    return [es_cleaner(run) for run in doc["runs"]]


COMMANDS = {
    "curator": es_cleaner_runs,
    "to_s3": to_s3,
    "forward": forward,
    "to_es": to_es,
    "to_fluent": to_fluent,
}

if __name__ == "__main__":
    out = COMMANDS[sys.argv[1]](json.load(sys.stdin))
    json.dump(out, sys.stdout)
