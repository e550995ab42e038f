"""The Android Gradle project is consistent, checked without the Android SDK (which this machine lacks):
the modules and flavors exist, every library alias is in the version catalog, every class the app imports
from the project exists in the sources, runtime libraries stay in their flavor, the R references are
defined, the assets path is where `mnv1-tk bundle` writes, and the resources and manifest compile with aapt2."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.android.conftest import CORE, DEMO
from toolkit.bundle import INDEX_NAME, INDEX_VERSION, RUNTIMES

APP = DEMO / "app"
FLAVORS = sorted(set(RUNTIMES.values()))  # litert, mslite, ort
ANDROID_NS = "{http://schemas.android.com/apk/res/android}"
# Imports a flavor may use, by package prefix; anything else must be a project class or a declared library.
FLAVOR_PACKAGES = {"litert": "com.google.ai.edge.litert", "mslite": "com.mindspore", "ort": "ai.onnxruntime"}
LIBRARY_PACKAGES = ("android.", "androidx.", "kotlinx.coroutines.", "java.", "kotlin.", "org.junit.")


def kotlin_sources(*source_sets: str) -> list[Path]:
    return [p for s in source_sets for p in (APP / "src" / s).rglob("*.kt")]


def declared_classes() -> dict[str, set[str]]:
    """package -> top-level classes, per Java file name and Kotlin class/object declarations."""
    found: dict[str, set[str]] = {}
    for path in [*CORE.glob("src/main/java/**/*.java"), *APP.glob("src/**/*.kt")]:
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+)", text, re.M).group(1)
        kotlin_declaration = r"^(?:private |internal )?(?:data |abstract |open )?(?:class|object|interface)\s+(\w+)"
        names = {path.stem} if path.suffix == ".java" else set(re.findall(kotlin_declaration, text, re.M))
        found.setdefault(package, set()).update(names)
    return found


def test_modules_flavors_and_catalog():
    settings = (DEMO / "settings.gradle.kts").read_text()
    assert re.search(r'include\(":app",\s*":core"\)', settings)
    catalog = tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())
    app_build = (APP / "build.gradle.kts").read_text()
    assert re.search(r"minSdk = 24\b", app_build) and re.search(r"compileSdk = 35\b", app_build)
    assert re.search(r"targetSdk = 35\b", app_build)
    assert int(catalog["versions"]["agp"].split(".")[0]) == 8
    assert sorted(re.findall(r'create\("(\w+)"\)', app_build)) == FLAVORS
    for build in (DEMO / "build.gradle.kts", APP / "build.gradle.kts", CORE / "build.gradle.kts"):
        text = build.read_text()
        for alias in re.findall(r"\blibs\.plugins\.([\w.]+)", text):
            assert alias.replace(".", "-") in catalog["plugins"], f"{build.name}: plugin {alias}"
        for alias in re.findall(r"\blibs\.(?!plugins\.)([\w.]+)", text):
            assert alias.replace(".", "-") in catalog["libraries"], f"{build.name}: library {alias}"
    for flavor in FLAVORS:
        assert f'"{flavor}Implementation"' in app_build


def test_every_project_class_the_app_imports_exists():
    declared = declared_classes()
    for path in kotlin_sources("main", "androidTest", *FLAVORS):
        text = path.read_text()
        flavor = path.relative_to(APP / "src").parts[0]
        for name in re.findall(r"^import\s+([\w.]+)", text, re.M):
            package, _, cls = name.rpartition(".")
            if package.startswith("org.mnv1tk."):
                assert cls in declared.get(package, set()), f"{path.name} imports {name}, which is not in the sources"
                continue
            runtime = [f for f, prefix in FLAVOR_PACKAGES.items() if name.startswith(prefix + ".")]
            if runtime:
                assert runtime == [flavor], f"{path.name} ({flavor}) imports {name} of the {runtime[0]} flavor"
            else:
                assert name.startswith(LIBRARY_PACKAGES), f"{path.name} imports {name} from no declared library"
    # the shared sources call RuntimeFactory.open: each flavor supplies it with one signature
    signatures = set()
    for flavor in FLAVORS:
        text = next((APP / "src" / flavor / "java").rglob("RuntimeFactory.kt")).read_text()
        assert re.search(r"^object RuntimeFactory\b", text, re.M), flavor
        signatures.add(re.search(r"fun open\(([^)]*)\): Classifier", text).group(1))
    assert len(signatures) == 1, signatures


def test_manifest_activities_and_r_references_resolve():
    manifest = ET.parse(APP / "src/main/AndroidManifest.xml").getroot()
    demo_classes = declared_classes()["org.mnv1tk.demo"]
    activities = [a.get(ANDROID_NS + "name") for a in manifest.iter("activity")]
    assert activities and all(a.lstrip(".") in demo_classes for a in activities), activities
    res = APP / "src/main/res"
    ids = {m for p in res.glob("layout/*.xml") for m in re.findall(r'@\+id/(\w+)', p.read_text())}
    values = ET.parse(res / "values/strings.xml").getroot()
    defined = {"id": ids, "layout": {p.stem for p in res.glob("layout/*.xml")},
               "string": {e.get("name") for e in values.iter("string")},
               "array": {e.get("name") for e in values.iter("string-array")}}
    for path in kotlin_sources("main", *FLAVORS):
        for kind, name in re.findall(r"(?<![\w.])R\.(id|layout|string|array)\.(\w+)", path.read_text()):
            assert name in defined[kind], f"{path.name}: R.{kind}.{name} is not defined"
    for path in res.rglob("*.xml"):
        for kind, name in re.findall(r"@(string|array)/(\w+)", path.read_text()):
            assert name in defined[kind], f"{path.name}: @{kind}/{name} is not defined"


def test_assets_path_and_index_format_match_bundle():
    """The app reads assets/models.json; `bundle --out android_demo/app/src/main/assets` writes it there."""
    readme = (DEMO / "README.md").read_text()
    assert "--out android_demo/app/src/main/assets" in readme
    assert 'rootProject.file("app/src/main/assets")' in (CORE / "build.gradle.kts").read_text()
    index_java = (CORE / "src/main/java/org/mnv1tk/core/ModelIndex.java").read_text()
    assert f'FILE_NAME = "{INDEX_NAME}"' in index_java and f"VERSION = {INDEX_VERSION};" in index_java
    assert "ModelIndex.FILE_NAME" in (APP / "src/main/java/org/mnv1tk/demo/AssetBundle.kt").read_text()


def test_resources_and_manifest_compile_with_aapt2(tmp_path):
    aapt2 = shutil.which("aapt2")
    if aapt2 is None:
        pytest.fail("aapt2 is missing: run scripts/install.sh (Debian package aapt)")
    res = APP / "src/main/res"
    compiled = subprocess.run([aapt2, "compile", "--dir", str(res), "-o", str(tmp_path / "res.zip")],
                              capture_output=True, text=True)
    assert compiled.returncode == 0 and (tmp_path / "res.zip").stat().st_size > 0, compiled.stderr
    # aapt2 compiles XML resources only; the manifest goes through the same XML compiler as res/xml
    (tmp_path / "xml").mkdir()
    shutil.copy(APP / "src/main/AndroidManifest.xml", tmp_path / "xml/manifest.xml")
    manifest = subprocess.run([aapt2, "compile", str(tmp_path / "xml/manifest.xml"), "-o", str(tmp_path)],
                              capture_output=True, text=True)
    assert manifest.returncode == 0, manifest.stderr
    broken = tmp_path / "broken/layout"
    broken.mkdir(parents=True)
    (broken / "bad.xml").write_text("<LinearLayout><TextView></LinearLayout>")
    assert subprocess.run([aapt2, "compile", str(broken / "bad.xml"), "-o", str(tmp_path)],
                          capture_output=True).returncode != 0
