#!/usr/bin/env bash
# The demo island: containers for the hosts of inventory/demo/hosts.yml, converged with
# playbooks/site.yml, left running for the operator to explore.
#
#   tools/demo.sh [up]                          set up this machine, start the hosts, build the
#                                               demo bundle, converge
#   tools/demo.sh converge [--expect-no-change] [ansible-playbook options]
#                                               converge again (optionally failing if anything
#                                               changed); e.g. --check --diff
#   tools/demo.sh down                          remove the demo hosts and their network
#   tools/demo.sh prepare                       start the hosts and build the bundle, no converge
#
# ISLAND_DEMO_INVENTORY and ISLAND_DEMO_DIR name another inventory of the same shape and its state
# directory (benchmarks/converge.py uses them for islands with more agents); each inventory's hosts
# are labelled with its docker network, so `down` removes only that island.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/lib/setup.sh
source tools/lib/setup.sh

INVENTORY=${ISLAND_DEMO_INVENTORY:-inventory/demo/hosts.yml}
DEMO_DIR=${ISLAND_DEMO_DIR:-$ISLAND_CACHE/demo}

# Lines of "name address" per host, and the network name and subnet, all read from the inventory.
demo_inventory() {
  ansible-inventory -i "$INVENTORY" --list | python3 -c '
import json, sys
data = json.load(sys.stdin)
hostvars = data["_meta"]["hostvars"]
first = next(iter(hostvars.values()))
print("network", first["island_demo_network"], first["island_demo_subnet"])
for name, values in sorted(hostvars.items()):
    print("host", name, values["ansible_host"])
'
}

# The docker network of the inventory: its hosts' containers are named <network>-<host> and carry
# the label io.island.demo=<network>.
demo_network() { demo_inventory | awk '$1 == "network" {print $2}'; }

demo_hosts() {
  island_setup
  mkdir -p "$DEMO_DIR"
  local kind name address network="" subnet label
  while read -r kind name address; do
    if [ "$kind" = network ]; then
      network=$name subnet=$address label=io.island.demo=$name
      docker network inspect "$network" >/dev/null 2>&1 ||
        docker network create --internal --subnet "$subnet" --label "$label" "$network" >/dev/null
      continue
    fi
    if ! docker container inspect "$network-$name" >/dev/null 2>&1; then
      island_log "Starting demo host $name ($address)"
      docker run -d --name "$network-$name" --hostname "$name" --label "$label" \
        --network "$network" --ip "$address" \
        --cap-add SYS_ADMIN --cap-add NET_ADMIN \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
        -v "$ISLAND_SSH_KEY.pub:/root/.ssh/authorized_keys:ro" \
        "$ISLAND_TEST_IMAGE" >/dev/null
    fi
  done < <(demo_inventory)
  demo_known_hosts "$network"
  demo_kernel_parameters "$network"
  demo_alertmanager_templates "$network"
}

# Test-only, as in molecule/island/prepare.yml: Debian 12's Alertmanager (the test bundle's) reads its
# notification templates from /usr/share/prometheus/alertmanager/ (Debian's 02-Do_not_embed_blobs.patch),
# where its package would put them; upstream's release embeds them. Every demo host gets Debian's files.
demo_alertmanager_templates() {
  local network=$1 kind name address
  while read -r kind name address; do
    [ "$kind" = host ] || continue
    docker exec "$network-$name" mkdir -p /usr/share/prometheus/alertmanager
    docker cp /usr/share/prometheus/alertmanager/default.tmpl "$network-$name:/usr/share/prometheus/alertmanager/"
    docker cp /usr/share/prometheus/alertmanager/email.tmpl "$network-$name:/usr/share/prometheus/alertmanager/"
  done < <(demo_inventory)
}

# Test-only, as in molecule/shared/prepare.yml: the containers share this machine's kernel, whose
# /proc/sys is read-only in them, so the k3s role's /etc/sysctl.d/90-kubelet.conf cannot be applied
# there (systemd-sysctl skips itself). The k3s double reads that directory instead, as if it had been
# applied, through the env file its unit reads: a node starts only if the role wrote every value.
demo_kernel_parameters() {
  local network=$1 kind name address
  while read -r kind name address; do
    [ "$kind" = host ] || continue
    docker exec "$network-$name" sh -c 'for unit in k3s k3s-agent; do
      printf "%s\n" "# test-only: see tools/demo.sh" "ISLAND_TEST_SYSCTL_D=/etc/sysctl.d" >"/etc/default/$unit"
    done'
  done < <(demo_inventory)
}

demo_up() {
  demo_hosts
  demo_bundle
  demo_converge
}

# The demo bundle: built by the test tooling through the real builder, signed with a demo key that
# the demo island's allowed_signers names.
demo_bundle() {
  island_log "Building the demo bundle (.cache/demo/bundle)"
  python3 tests/bundle/testbundle.py "$DEMO_DIR/bundle" \
    --signing-key "$DEMO_DIR/signing/id_ed25519" --allowed-signers "$DEMO_DIR/allowed_signers"
}

# Records each host's real SSH host key (read through docker, not over the network), so the
# controller checks host keys as it would in a real island.
demo_known_hosts() {
  local network=$1 kind name address key
  : >"$DEMO_DIR/known_hosts.new"
  while read -r kind name address; do
    [ "$kind" = host ] || continue
    for _ in $(seq 1 60); do
      key=$(docker exec "$network-$name" cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null) && break
      sleep 1
    done
    [ -n "$key" ] || island_die "demo host $name made no SSH host key within 60 s; see: docker logs $network-$name"
    echo "$address $key" >>"$DEMO_DIR/known_hosts.new"
  done < <(demo_inventory)
  mv "$DEMO_DIR/known_hosts.new" "$DEMO_DIR/known_hosts"
}

demo_converge() {
  island_setup_venv
  export ANSIBLE_CONFIG=$ISLAND_ROOT/ansible.cfg
  local log=$DEMO_DIR/last-converge.log
  island_log "ansible-playbook -i $INVENTORY playbooks/site.yml"
  local expect_no_change=false
  if [ "${1:-}" = --expect-no-change ]; then expect_no_change=true; shift; fi
  ansible-playbook -i "$INVENTORY" playbooks/site.yml "$@" | tee "$log"
  if $expect_no_change; then
    if grep -E '^[^ ].*: ok=[0-9]+ +changed=[1-9]' "$log" >/dev/null; then
      island_die "the second converge changed something (see the PLAY RECAP above); it must change nothing"
    fi
    island_log "Converge $*: zero changes"
  fi
}

demo_down() {
  local ids label
  island_setup_venv
  label=io.island.demo=$(demo_network)
  ids=$(docker ps -aq --filter "label=$label")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  ids=$(docker network ls -q --filter "label=$label")
  [ -z "$ids" ] || docker network rm $ids >/dev/null
  # The hosts are gone, and so is the island that took the last bundle: its record on the controller
  # (docs/upgrades.md) would refuse a rebuilt demo bundle of the same version on the next `up`.
  rm -f "$DEMO_DIR/island-bundle-applied.json"
  island_log "Demo island removed"
}

case "${1:-up}" in
  up) demo_up ;;
  prepare) demo_hosts; demo_bundle ;;
  converge) shift; demo_converge "$@" ;;
  down) demo_down ;;
  *) island_die "unknown command '$1'; use up, prepare, converge or down" ;;
esac
