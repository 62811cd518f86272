"""SBOMs: OUT/sbom.cdx.json (CycloneDX 1.6) of every run, valid against the official
schema, deterministic; and with --embed-sbom each wheel's own SBOM in .dist-info/sboms/
(PEP 770), the wheel still valid, installable and reproducible."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from scenario import Pkg
from test_cycles import SELF, TWO, seed_store

from wheelstrap.dist.sbom import EMBEDDED_NAME, Licenses, licenses_of
from wheelstrap.dist.validate import validate_wheel

LICENSED = [
    Pkg("hostback", build_requires=["hosthelper"], provides_backend=True,
        backend_imports=["hosthelper"], deps=["hosthelper"],
        metadata=["License-Expression: Apache-2.0 OR MIT"]),
    Pkg("hosthelper", backend="hostback", build_requires=["hostback"],
        metadata=["License: Helper Licence 1.0"]),
    Pkg("app", backend="hostback", build_requires=["hostback"], deps=["lib"],
        metadata=["Classifier: License :: OSI Approved :: BSD License",
                  "Classifier: Programming Language :: Python"]),
    Pkg("lib", backend="hostback", build_requires=["hostback"]),
]
assert [p.name for p in LICENSED[:3]] == [p.name for p in TWO]


def _valid(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


def _order(out: Path) -> dict[str, dict[str, Any]]:
    return {b["wheel"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}


def _props(item: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties", [])}


def test_the_validator_refuses_an_invalid_document() -> None:
    """The schema check of these tests can fail: a document off the schema is refused."""
    good = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "library", "name": "a", "bom-ref": "a",
                            "hashes": [{"alg": "SHA-256", "content": "ab" * 32}]}]}
    _valid(json.dumps(good))
    bad = json.loads(json.dumps(good))
    bad["components"][0]["hashes"][0]["alg"] = "SHA-257"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bad)) is not None
    bad = {**good, "formulation": [{"workflows": [{"bom-ref": "w", "uid": "w"}]}]}
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bad)) is not None


def test_licenses_are_taken_as_the_metadata_states_them() -> None:
    meta = (b"Metadata-Version: 2.4\nName: a\nVersion: 1\nLicense-Expression: MIT\n"
            b"License: ignored\nClassifier: License :: OSI Approved :: MIT License\n")
    assert licenses_of(meta) == Licenses("MIT", "ignored",
                                         ("License :: OSI Approved :: MIT License",))
    assert licenses_of(b"Metadata-Version: 2.1\nName: a\nVersion: 1\n") == Licenses()


def test_a_run_writes_a_valid_deterministic_sbom(serve_index, run_bootstrap) -> None:
    index = serve_index(LICENSED)
    cold = run_bootstrap("app", index=index.url)
    assert cold.code == 0, cold.stderr
    path = cold.out / "sbom.cdx.json"
    text = path.read_text()
    _valid(text)
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["serialNumber"].startswith("urn:uuid:")
    assert "timestamp" not in doc["metadata"]
    order = _order(cold.out)
    assert len(order) == 4
    comps = {c["bom-ref"]: c for c in doc["components"]}
    assert set(comps) == set(order)  # every shipped wheel, and only those
    for wheel, b in order.items():
        c = comps[wheel]
        assert c["purl"] == f"pkg:pypi/{b['name']}@{b['version']}?file_name={wheel}"
        assert c["hashes"] == [{"alg": "SHA-256", "content": b["sha256"]}]
        (sdist,) = c["pedigree"]["ancestors"]
        assert sdist["hashes"] == [{"alg": "SHA-256", "content": b["sdist_sha256"]}]
        assert sdist["purl"].endswith(f"?file_name={b['sdist']}")
        assert sdist["externalReferences"][0]["url"] == b["sdist_url"]
        (src,) = [r for r in c["externalReferences"] if r["type"] == "source-distribution"]
        assert src["url"] == b["sdist_url"]
    by_name = {order[w]["name"]: c for w, c in comps.items()}
    assert by_name["hostback"]["licenses"] == [{"expression": "Apache-2.0 OR MIT"}]
    assert by_name["hosthelper"]["licenses"] == [{"license": {"name": "Helper Licence 1.0"}}]
    assert by_name["app"]["licenses"] == [
        {"license": {"name": "License :: OSI Approved :: BSD License"}}]
    assert "licenses" not in by_name["lib"]  # the metadata states none: none is invented

    # runtime dependencies between the shipped wheels
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    wheel_of = {b["name"]: w for w, b in order.items()}
    assert deps[wheel_of["app"]] == {wheel_of["lib"]}
    assert deps[wheel_of["hostback"]] == {wheel_of["hosthelper"]}

    # built with: one workflow per wheel, its inputs the sdist and its build environment
    (formula,) = doc["formulation"]
    transient = {c["bom-ref"]: c for c in formula.get("components", [])}
    flows = {f["bom-ref"]: f for f in formula["workflows"]}
    assert {f["outputs"][0]["resource"]["ref"] for f in flows.values()} == set(order)
    for wheel in order:
        assert flows[f"build:{wheel}"]["outputs"][0]["resource"]["ref"] == wheel
    for wheel, b in order.items():
        flow = flows[f"build:{wheel}"]
        assert flow["taskTypes"] == ["build"]
        source, *env = flow["inputs"]
        assert _props(source)["wheelstrap:role"] == "source"
        assert source["resource"]["ref"] == comps[wheel]["pedigree"]["ancestors"][0]["bom-ref"]
        assert len(env) == len(b["build_env"])
        for inp, e in zip(env, b["build_env"], strict=True):
            ref = inp["resource"]["ref"]
            target = comps.get(ref) or transient[ref]
            assert target["hashes"] == [{"alg": "SHA-256", "content": e["sha256"]}]
            kind = "seed" if e["seed"] else "stage0" if e.get("stage0") else "built"
            assert _props(inp)["wheelstrap:kind"] == kind
        if b["cycle"] is not None:
            assert _props(flow)["wheelstrap:cycle"] == b["cycle"]
    # the cycle was entered from stage-0 wheels: the stage that reproduced the shipped
    # bytes is a workflow too, and names them with their hashes
    stage0 = [i for f in formula["workflows"] for i in f["inputs"][1:]
              if _props(i)["wheelstrap:kind"] == "stage0"]
    assert stage0 and all(transient[i["resource"]["ref"]]["hashes"] for i in stage0)
    assert all(r in transient or r in comps for f in formula["workflows"]
               for r in [i["resource"]["ref"] for i in f["inputs"][1:]])

    # a warm run that rebuilds nothing leaves the file alone
    mtime = path.stat().st_mtime_ns
    warm = run_bootstrap("app", index=index.url, out=cold.out)
    assert warm.code == 0, warm.stderr
    assert all(b["reused"] for b in _order(warm.out).values() if b["cycle"] is None)
    assert path.read_text() == text and path.stat().st_mtime_ns == mtime
    # a damaged or missing file is made again, the same
    path.write_text("{}")
    again = run_bootstrap("app", index=index.url, out=cold.out)
    assert again.code == 0, again.stderr
    assert path.read_text() == text
    path.unlink()
    again = run_bootstrap("app", index=index.url, out=cold.out)
    assert again.code == 0, again.stderr
    assert path.read_text() == text


def _embedded(wheel: Path) -> tuple[str, list[list[str]], str]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (sbom,) = [n for n in names if n.endswith(f".dist-info/sboms/{EMBEDDED_NAME}")]
        (record,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        assert sbom.split("/")[0] == record.split("/")[0]
        assert names.index(sbom) == names.index(record) - 1
        rows = list(csv.reader(io.StringIO(zf.read(record).decode())))
        return zf.read(sbom).decode(), rows, sbom


def test_embed_sbom_puts_a_valid_sbom_in_each_wheel(serve_index, run_bootstrap,
                                                    tmp_path: Path) -> None:
    index = serve_index(LICENSED)
    one = run_bootstrap("app", "--embed-sbom", index=index.url, out=tmp_path / "one")
    assert one.code == 0, one.stderr
    order = _order(one.out)
    cycles = json.loads((one.out / "cycles.json").read_text())["cycles"]
    # the SBOM names the cycle's own wheels without their hashes: stages still converge
    assert [c["fixed_point"] for c in cycles] == [True]
    for wheel, b in order.items():
        path = one.out / "wheels" / wheel
        validate_wheel(path, b["name"], b["version"], None)
        text, rows, name = _embedded(path)
        _valid(text)
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert [name, f"sha256={digest.decode()}", str(len(data))] in rows
        doc = json.loads(text)
        me = doc["metadata"]["component"]
        assert me["bom-ref"] == wheel and "hashes" not in me  # it cannot hold its own hash
        (sdist,) = me["pedigree"]["ancestors"]
        assert sdist["hashes"] == [{"alg": "SHA-256", "content": b["sdist_sha256"]}]
        (flow,) = doc["formulation"][0]["workflows"]
        env = flow["inputs"][1:]
        assert len(env) == len(b["build_env"])
        members = {m["name"] for c in cycles for m in c["members"]} if b["cycle"] else set()
        comps = {c["bom-ref"]: c for c in doc["formulation"][0].get("components", [])}
        for inp, e in zip(env, b["build_env"], strict=True):
            comp = comps[inp["resource"]["ref"]]
            if comp["name"] in members:
                assert _props(inp)["wheelstrap:kind"] == "cycle-member"
                assert "hashes" not in comp
            else:
                assert comp["hashes"] == [{"alg": "SHA-256", "content": e["sha256"]}]
    # the run's SBOM describes the wheels with their SBOMs in them
    _valid((one.out / "sbom.cdx.json").read_text())
    # a second build from nothing gives the same bytes
    two = run_bootstrap("app", "--embed-sbom", index=index.url, out=tmp_path / "two")
    assert two.code == 0, two.stderr
    for wheel in order:
        assert (one.out / "wheels" / wheel).read_bytes() == \
            (two.out / "wheels" / wheel).read_bytes(), wheel
    # and the wheels install
    target = tmp_path / "site"
    app = next(w for w, b in order.items() if b["name"] == "app")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--target", str(target), str(one.out / "wheels" / app)], check=True)
    assert any(target.glob(f"app-1.0.dist-info/sboms/{EMBEDDED_NAME}"))


def test_embed_sbom_keeps_seeded_and_seedless_builds_comparable(serve_index, run_bootstrap,
                                                                 tmp_path: Path) -> None:
    """The stages of a seeded cycle and of its seedless twin end in the same bytes with
    their SBOMs in them; a seed without an SBOM differs from its rebuild by that file."""
    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    run = run_bootstrap("user", "--seeds", str(store), "--cross-check", "--embed-sbom",
                        index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = json.loads((run.out / "cycles.json").read_text())["cycles"]
    assert cycle["fixed_point"] is True and cycle["cross_check"]["source_run"]["fixed_point"]
    assert cycle["cross_check"]["identical"] is True
    (check,) = cycle["seed_checks"]
    assert check["reproduced"] is False
    assert check["differences"] == {
        "added": [], "changed": ["selfback-1.0.dist-info/RECORD"],
        "removed": [f"selfback-1.0.dist-info/sboms/{EMBEDDED_NAME}"]}
    for wheel in run.wheels:
        _valid(_embedded(run.out / "wheels" / wheel)[0])


def test_embed_sbom_is_part_of_the_content_address(serve_index, run_bootstrap) -> None:
    index = serve_index([Pkg("lib")])
    plain = run_bootstrap("lib", index=index.url)
    assert plain.code == 0, plain.stderr
    (before,) = _order(plain.out).values()
    embedded = run_bootstrap("lib", "--embed-sbom", index=index.url, out=plain.out)
    assert embedded.code == 0, embedded.stderr
    (after,) = _order(embedded.out).values()
    assert after["reused"] is False and after["sha256"] != before["sha256"]
    _embedded(embedded.out / "wheels" / after["wheel"])


@pytest.mark.parametrize("epoch", [0, 1_700_000_000])
def test_embedding_is_a_function_of_its_inputs(tmp_path: Path, epoch: int) -> None:
    from wheelstrap.dist.sbom import embed

    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("a/__init__.py", "")
        zf.writestr("a-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n")
        zf.writestr("a-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n"
                    "Tag: py3-none-any\n")
        zf.writestr("a-1.0.dist-info/RECORD", "a/__init__.py,,\n")
    outs = []
    for n in range(2):
        dest = tmp_path / f"out{n}" / wheel.name
        dest.parent.mkdir()
        embed(wheel, dest, '{"x": 1}\n', epoch)
        outs.append(dest.read_bytes())
    assert outs[0] == outs[1]
    again = tmp_path / "again" / wheel.name
    again.parent.mkdir()
    embed(tmp_path / "out0" / wheel.name, again, '{"x": 2}\n', epoch)  # replaced, not added
    with zipfile.ZipFile(again) as zf:
        assert zf.namelist().count(f"a-1.0.dist-info/sboms/{EMBEDDED_NAME}") == 1
        record = zf.read("a-1.0.dist-info/RECORD").decode().splitlines()
        assert sum(EMBEDDED_NAME in line for line in record) == 1


def test_embedding_checks_the_wheel_first(tmp_path: Path) -> None:
    from wheelstrap.dist.sbom import embed
    from wheelstrap.errors import BuildFailure

    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("../escape.py", "")
        zf.writestr("a-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n")
        zf.writestr("a-1.0.dist-info/RECORD", "")
    with pytest.raises(BuildFailure, match="escape"):
        embed(wheel, tmp_path / "out.whl", "{}\n", 0)
    assert not (tmp_path / "out.whl").exists()


@pytest.mark.parametrize("damage", ["record-not-utf8", "bad-crc"])
def test_a_damaged_wheel_fails_its_build_not_the_run(tmp_path: Path, damage: str) -> None:
    from wheelstrap.dist.sbom import embed
    from wheelstrap.errors import BuildFailure

    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    record = b"a/__init__.py,,\n\xff\xfe\n" if damage == "record-not-utf8" else b""
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("a/__init__.py", "x = 1\n" * 50)
        zf.writestr("a-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n")
        zf.writestr("a-1.0.dist-info/RECORD", record)
    if damage == "bad-crc":  # flip a byte of the stored (uncompressed) module
        data = bytearray(wheel.read_bytes())
        at = data.index(b"x = 1")
        data[at] ^= 0x01
        wheel.write_bytes(bytes(data))
    out = tmp_path / "out.whl"
    with pytest.raises(BuildFailure, match="damaged"):
        embed(wheel, out, "{}\n", 0)
    assert not out.exists()


def test_embed_sbom_on_dask_workers_gives_the_same_wheels(serve_index, run_bootstrap,
                                                          tmp_path: Path, dask) -> None:
    index = serve_index(LICENSED)
    local = run_bootstrap("app", "--embed-sbom", index=index.url, out=tmp_path / "local")
    assert local.code == 0, local.stderr
    remote = run_bootstrap("app", "--embed-sbom", "--scheduler", dask.address,
                           index=index.url, out=tmp_path / "remote")
    assert remote.code == 0, remote.stderr
    assert remote.wheels == local.wheels
    for w in remote.wheels:
        assert (remote.out / "wheels" / w).read_bytes() == (local.out / "wheels" / w).read_bytes()
    assert (remote.out / "sbom.cdx.json").read_bytes() == (local.out / "sbom.cdx.json").read_bytes()
