#!/usr/bin/env python3
"""kvmrun's ACPI tables as an independent parser sees them.

Builds the tables with the test-only tool tests/linux/acpi_dump.c (the same
cpu/acpi.c a VM uses), then has ACPICA's iasl disassemble every table
without errors, and recompiles the disassembled DSDT: the AML must come back
byte for byte, which checks our AML encoder (PkgLength, names, resource
templates) against the reference compiler. Skips (exit 77) without iasl
(Debian: apt-get install acpica-tools)."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

SKIP = 77

# (cpus, pci, virtio-mmio slots, APIC ID stride): 1, 2 and 64 CPUs, a
# sparse topology needing x2APIC entries, and a DSDT past 4 KiB (3-byte
# PkgLength).
CONFIGS = [
    (1, 0, 0, 1),
    (2, 1, 2, 1),
    (64, 1, 8, 1),
    (64, 1, 32, 8),
    (256, 1, 32, 1),
]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def checksum_ok(data):
    return sum(data) & 0xFF == 0


def check_config(tool, iasl, cfg):
    cpus, pci, nvirtio, stride = cfg
    with tempfile.TemporaryDirectory(prefix="kvmrun-acpi-") as d:
        r = subprocess.run([tool, d] + [str(x) for x in cfg],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"acpi_dump {cfg}: {r.stderr.strip()}")
        files = sorted(f for f in os.listdir(d) if f.endswith(".dat"))
        want = {"RSDP.dat", "RSDT.dat", "XSDT.dat", "FACP.dat", "FACS.dat",
                "DSDT.dat", "APIC.dat"}
        if set(files) != want:
            fail(f"{cfg}: tables {files}, want {sorted(want)}")

        rsdp = open(os.path.join(d, "RSDP.dat"), "rb").read()
        if rsdp[:8] != b"RSD PTR " or not checksum_ok(rsdp[:20]) \
                or not checksum_ok(rsdp) or rsdp[15] != 2:
            fail(f"{cfg}: bad RSDP {rsdp.hex()}")

        # iasl of this era cannot read an RSDP from a file; every other
        # table must disassemble cleanly.
        for f in sorted(want - {"RSDP.dat"}):
            data = open(os.path.join(d, f), "rb").read()
            if f != "FACS.dat" and not checksum_ok(data):
                fail(f"{cfg}: {f}: bad checksum")
            r = subprocess.run([iasl, "-d", f], cwd=d, capture_output=True,
                               text=True)
            out = r.stdout + r.stderr
            dsl = os.path.join(d, f[:-4] + ".dsl")
            if r.returncode != 0 or not os.path.exists(dsl) \
                    or "Error" in out or "Warning" in out:
                fail(f"{cfg}: iasl -d {f} (rc {r.returncode}):\n{out}")
            text = open(dsl, encoding="latin-1").read()
            if "**** " in text or "Unknown" in text:
                fail(f"{cfg}: iasl flagged {f}:\n{text}")

        # recompile the DSDT without optimizations: same AML
        r = subprocess.run([iasl, "-oa", "-p", "re", "DSDT.dsl"], cwd=d,
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        if r.returncode != 0 or "0 Errors, 0 Warnings" not in out:
            fail(f"{cfg}: iasl DSDT.dsl:\n{out}")
        ours = open(os.path.join(d, "DSDT.dat"), "rb").read()
        theirs = open(os.path.join(d, "re.aml"), "rb").read()
        if ours[36:] != theirs[36:]:
            fail(f"{cfg}: DSDT AML differs from iasl's recompilation")

        apic = open(os.path.join(d, "APIC.dsl"), encoding="latin-1").read()
        lapics = apic.count("Subtable Type : 00 [Processor Local APIC]")
        x2apics = apic.count("Subtable Type : 09 [Processor Local x2APIC]")
        if lapics + x2apics != cpus:
            fail(f"{cfg}: MADT lists {lapics}+{x2apics} CPUs, want {cpus}")
        if stride * (cpus - 1) > 254 and x2apics == 0:
            fail(f"{cfg}: APIC IDs above 254 without x2APIC entries")
        dsdt = open(os.path.join(d, "DSDT.dsl"), encoding="latin-1").read()
        if dsdt.count('"LNRO0005"') != nvirtio or \
                ('EisaId ("PNP0A03")' in dsdt) != bool(pci) or \
                'EisaId ("PNP0501")' not in dsdt or "Name (\\_S5" not in dsdt:
            fail(f"{cfg}: DSDT lacks expected devices:\n{dsdt}")
        # the PCI interrupt routing: INTA# of slots 1..31 -> GSI 16 + slot % 8
        if pci:
            import re
            prt = re.findall(r'Package \(0x04\)\s*\{\s*0x([0-9A-F]+),\s*(\w+),\s*(\w+),'
                             r'\s*0x([0-9A-F]+)\s*\}', dsdt)
            want_prt = [(f'{s:04X}FFFF', 'Zero', 'Zero', f'{16 + s % 8:08X}')
                        for s in range(1, 32)]
            got = [(a.upper().rjust(8, '0'), p, src, g.upper().rjust(8, '0'))
                   for a, p, src, g in prt]
            if "Name (_PRT, Package (0x1F)" not in dsdt or got != want_prt:
                fail(f"{cfg}: _PRT wrong: {got[:3]}... ({len(got)} entries)")
        elif "_PRT" in dsdt:
            fail(f"{cfg}: _PRT without PCI")
    print(f"ok: cpus={cpus} pci={pci} virtio_mmio={nvirtio} "
          f"stride={stride}: {len(want)} tables, iasl clean, DSDT round-trips"
          + (", _PRT 31 slots" if pci else ""))


def main():
    iasl = shutil.which("iasl")
    if not iasl:
        print("SKIP: iasl not found (apt-get install acpica-tools)")
        return SKIP
    tool = os.path.join(os.environ.get("BUILD_ROOT", "build"), "tests", "unit",
                        "acpi_dump")
    if not os.access(tool, os.X_OK):
        fail(f"{tool} not built")
    for cfg in CONFIGS:
        check_config(tool, iasl, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
