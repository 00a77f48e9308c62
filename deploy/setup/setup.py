"""One-shot setup of the ngx-honeytrap stack (deploy/compose.yaml's `setup` service).

Idempotent; every step overwrites what it installs, so running it again after an upgrade is safe:

1. Elasticsearch: the `kibana_system` password, a `honeytrap_writer` role and user for the
   sensors (write to the data stream, install its template, nothing else), the GeoIP ingest
   pipeline, and the index template (the module's own, merged with template-overlay.json so
   events get source.geo). A data stream a sensor already created is rolled over, so its next
   backing index picks the pipeline up.
2. Kibana: imports kibana/honeytrap.ndjson (data view, visualizations, map, dashboard).

Standard library only, so the pinned python image needs nothing installed.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ES = os.environ.get("ES_URL", "http://elasticsearch:9200").rstrip("/")
KIBANA = os.environ.get("KIBANA_URL", "http://kibana:5601").rstrip("/")
DATA_STREAM = os.environ.get("HONEYTRAP_INDEX", "logs-honeytrap-default")
PIPELINE = "logs-honeytrap-geoip"
TEMPLATE = os.environ.get("INDEX_TEMPLATE", "/setup/core/elasticsearch-index-template.json")
ES_DIR = os.environ.get("ES_ASSETS", "/setup/elasticsearch")
SAVED_OBJECTS = os.environ.get("KIBANA_OBJECTS", "/setup/kibana/honeytrap.ndjson")
DONE = "/tmp/setup-elasticsearch.done"


def env(name):
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"setup: {name} is not set (see deploy/.env.example)")
    return value


ELASTIC_AUTH = "Basic " + base64.b64encode(f"elastic:{env('ELASTIC_PASSWORD')}".encode()).decode()


def call(method, url, body=None, headers=None, ok=(200, 201)):
    """Returns (status, parsed JSON or text). Raises on statuses outside `ok`."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", ELASTIC_AUTH)
    if data is not None and not (headers and "Content-Type" in headers):
        request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    if status not in ok:
        raise RuntimeError(f"{method} {url}: HTTP {status}: {str(parsed)[:500]}")
    return status, parsed


def wait_for(what, probe, minutes):
    deadline = time.monotonic() + minutes * 60
    while True:
        try:
            if probe():
                return
        except (OSError, RuntimeError) as e:
            last = e
        else:
            last = "not ready"
        if time.monotonic() > deadline:
            sys.exit(f"setup: {what} not ready after {minutes} minutes: {last}")
        time.sleep(5)


def merge(base, overlay):
    """Deep merge of JSON objects: the overlay adds keys and wins on scalars."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def elasticsearch():
    wait_for("Elasticsearch", lambda: call("GET", f"{ES}/_cluster/health?wait_for_status=yellow&timeout=5s")[0] == 200, 10)

    call("POST", f"{ES}/_security/user/kibana_system/_password", {"password": env("KIBANA_SYSTEM_PASSWORD")})
    call("PUT", f"{ES}/_security/role/honeytrap_writer", {
        "cluster": ["monitor", "manage_index_templates"],
        "indices": [{
            "names": ["logs-honeytrap-*"],
            # create_doc: the sink only ever sends `create`; auto_configure: the data stream
            # is created by the first write.
            "privileges": ["create_doc", "auto_configure", "view_index_metadata"],
        }],
    })
    call("PUT", f"{ES}/_security/user/honeytrap_writer", {
        "password": env("HONEYTRAP_ES_PASSWORD"),
        "roles": ["honeytrap_writer"],
        "full_name": "ngx-honeytrap sensors",
    })

    call("PUT", f"{ES}/_ingest/pipeline/{PIPELINE}", load(os.path.join(ES_DIR, "geoip-pipeline.json")))
    # Same name and pattern as the template a sensor installs when it finds none, so whichever
    # comes first, this one is what stays (a sensor never replaces an existing template).
    template = merge(load(TEMPLATE), load(os.path.join(ES_DIR, "template-overlay.json")))
    template["index_patterns"] = [DATA_STREAM]
    call("PUT", f"{ES}/_index_template/{DATA_STREAM}", template)

    status, stream = call("GET", f"{ES}/_data_stream/{DATA_STREAM}", ok=(200, 404))
    if status == 200:
        write_index = stream["data_streams"][0]["indices"][-1]["index_name"]
        _, settings = call("GET", f"{ES}/{write_index}/_settings/index.default_pipeline")
        if settings.get(write_index, {}).get("settings", {}).get("index", {}).get("default_pipeline") != PIPELINE:
            call("POST", f"{ES}/{DATA_STREAM}/_rollover")
            print(f"setup: rolled {DATA_STREAM} over so new events go through {PIPELINE}")
    open(DONE, "w").close()
    print("setup: Elasticsearch ready (users, pipeline, index template)")


def kibana():
    def available():
        status, body = call("GET", f"{KIBANA}/api/status", ok=(200, 503))
        return status == 200 and body["status"]["overall"]["level"] == "available"

    wait_for("Kibana", available, 15)
    with open(SAVED_OBJECTS, "rb") as f:
        objects = f.read()
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"honeytrap.ndjson\"\r\n"
        f"Content-Type: application/ndjson\r\n\r\n"
    ).encode() + objects + f"\r\n--{boundary}--\r\n".encode()
    _, result = call("POST", f"{KIBANA}/api/saved_objects/_import?overwrite=true", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "kbn-xsrf": "ngx-honeytrap-setup",
    })
    if not result.get("success"):
        sys.exit(f"setup: Kibana import failed: {json.dumps(result.get('errors'))[:2000]}")
    print(f"setup: imported {result.get('successCount')} Kibana saved objects (dashboard \"ngx-honeytrap overview\")")


if __name__ == "__main__":
    try:
        elasticsearch()
        kibana()
    except RuntimeError as e:
        sys.exit(f"setup: {e}")
