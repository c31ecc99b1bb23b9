# Shell helpers shared by run.sh and pgo.sh (sourced, not run; HERE is the directory they are in).

# The cluster the example policies in policies/ are written for.
CID=/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod

# policy_dir DIR ASSIGNMENTS [gen.py flags...] : policies/ plus ASSIGNMENTS generated role
# assignments (load-role-assignments.json), in DIR, writable so reload loops can add files.
policy_dir() {
  local dir=$1 n=$2; shift 2
  mkdir -p "$dir"
  cp -r "$HERE/../../policies/." "$dir/"
  chmod -R u+w "$dir"
  python3 "$HERE/gen.py" policy "$dir/azure/load-role-assignments.json" --assignments "$n" "$@"
}

# ports_free PORT... : exits with a message when one of the loopback ports is taken.
ports_free() {
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "127.0.0.1:$p is already in use (set LOAD_PORT / LOAD_ADMIN_PORT)" >&2; exit 1
    fi
  done
}

# wait_ready ADMIN_PORT PID LOG NAME : waits up to 15 s for /readyz; exits with the log's tail
# when the server stops or never gets ready.
wait_ready() {
  local admin=$1 pid=$2 log=$3 name=$4
  for _ in $(seq 150); do
    if curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$name did not become ready:" >&2; tail -20 "$log" >&2; exit 1
}
