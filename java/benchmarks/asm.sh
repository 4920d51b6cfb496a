#!/usr/bin/env bash
# The allocate/free pair's machine code, and its lock-prefixed instructions:
#   java/benchmarks/asm.sh [size]        # default 16 B
# Runs io.gomem.bench.PairAsm with -XX:CompileCommand=print on the two pairs (the held-P owner
# path and the default API), takes the C2 nmethods' code bytes that HotSpot prints (as hex: no
# hsdis needed), disassembles them with objdump and prints every lock-prefixed instruction and the
# total per pair. Needs binutils (objdump) and python3; build the jar first (see run.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$(cd "$(dirname "$0")" && pwd)/jdk25.sh"
java_bin="$(jdk25)/bin/java"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$java_bin" --enable-native-access=ALL-UNNAMED -XX:+UnlockDiagnosticVMOptions \
  -XX:CompileCommand=quiet -XX:CompileCommand=print,io.gomem.bench.PairAsm::heldPair \
  -XX:CompileCommand=print,io.gomem.bench.PairAsm::rawPair \
  -cp "$here/target/benchmarks.jar" io.gomem.bench.PairAsm "${1:-16}" > "$out" 2>&1
python3 - "$out" <<'PY'
import re, subprocess, sys, tempfile
text = open(sys.argv[1]).read()
# Each nmethod: a header naming the compiler and the method, then [MachCode] ... [/MachCode].
blocks = re.findall(r'Compiled method \((c1|c2)\)[^\n]*?(io\.gomem\.bench\.PairAsm::\w+)(.*?)\[/MachCode\]', text, re.S)
last = {}
for comp, method, body in blocks:
    if comp == 'c2':
        last[method] = body  # the last C2 compilation of each pair is the one that runs
if not last:
    sys.exit("asm.sh: no C2-compiled pair in the output (did PairAsm run long enough?)")
for method, body in sorted(last.items()):
    code = body.split('[MachCode]', 1)[1]
    start = None
    data = bytearray()
    for line in code.splitlines():
        m = re.match(r'\s*0x([0-9a-f]+):\s*([0-9a-f| ]+)$', line)
        if not m:
            continue
        if start is None:
            start = int(m.group(1), 16)
        for group in m.group(2).replace('|', ' ').split():
            data += bytes.fromhex(group)
    with tempfile.NamedTemporaryFile(suffix='.bin') as f:
        f.write(data)
        f.flush()
        dis = subprocess.run(['objdump', '-D', '-b', 'binary', '-mi386:x86-64', f'--adjust-vma={start:#x}', f.name],
                             capture_output=True, text=True, check=True).stdout
    instrs = [l for l in dis.splitlines() if re.match(r'\s+[0-9a-f]+:\t', l)]
    locked = [l for l in instrs if re.search(r'\tlock\b', l)]
    print(f"{method}: {len(data)} bytes of C2 code, {len(instrs)} instructions, {len(locked)} lock-prefixed")
    for l in locked:
        print("   ", l.split('\t')[-1].strip())
PY
