# Sourced by the benchmark scripts: jdk25 prints a JDK 25 or newer's home, $JAVA_HOME if it is
# one, else the first under /usr/lib/jvm; it exits the script with a message if there is none.
jdk25() {
  local h v
  for h in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [ -n "$h" ] && [ -x "$h/bin/java" ] || continue
    v=$("$h/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then echo "$h"; return; fi
  done
  echo "no JDK 25 found: set JAVA_HOME to one" >&2
  exit 1
}
