#!/usr/bin/env bash
# Installs the Debian packages the tests use as DICOM peers and validators:
# dicom3tools (dciodvfy), plastimatch (DVH peer), dcmtk (storescu/echoscu, dcmdump),
# chromium (renders the HTML report headless) and poppler-utils (pdftoppm renders the PDF report).
# Skips what is present; needs root or sudo for apt-get.
set -euo pipefail
need=()
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
command -v plastimatch >/dev/null 2>&1 || need+=(plastimatch)
# dcmdump, not storescu: pynetdicom puts Python storescu/echoscu of its own on the venv PATH
command -v dcmdump >/dev/null 2>&1 || need+=(dcmtk)
# audit tests: a PostgreSQL server and Orthanc (with its DICOMweb plugin), each started by
# the test itself on a temporary cluster/storage
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ -x /usr/sbin/Orthanc ] || command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
compgen -G "/usr/share/orthanc/plugins/libOrthancDicomWeb.so*" >/dev/null || need+=(orthanc-dicomweb)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-tools: not root and no sudo; tests needing ${need[*]} will be skipped" >&2; exit 0
  fi
fi
echo "install-tools: apt-get install ${need[*]}" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
