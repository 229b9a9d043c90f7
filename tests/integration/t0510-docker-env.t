#!/usr/bin/env bash
# t0510-docker-env.t - host-side Docker environments against the real engine: create from a
# local image or a rootfs tarball, list, create-tar/list-tars/delete-tar, stop/start/delete,
# bad input, an unreachable engine, and the default environment at host start
. "$(dirname "$0")/../lib/cluster.sh"
hr_need_docker
hr_setup
hr_start_host || exit 1

code () { hr_api "$@" | head -n 1; }
body () { hr_api "$@" | tail -n +2; }
ENV1=$HR_ENV_PREFIX-env
ENV2=$HR_ENV_PREFIX-rootfs
OTHER=$HR_ENV_PREFIX-other
IMG=hakuriver-test/busybox:latest
IMPORTED=hakuriver/$HR_ENV_PREFIX-imported:v1
TARDIR=$HR_DIR/shared/containers
ctr_state () { hr_docker GET "/containers/$1/json" | tail -n +2 | hr_json State.Status; }
ctr_label () { hr_docker GET "/containers/$1/json" | tail -n +2 | python3 -c 'import json,sys
print((json.load(sys.stdin)["Config"]["Labels"] or {}).get(sys.argv[1], "<none>"))' "$2"; }
tars_of () { ls "$TARDIR" 2>/dev/null | grep -E "^$1-[0-9]+\.tar$"; }
tar_ts () { tars_of "$1" | sed -E "s/^$1-([0-9]+)\.tar$/\1/"; }

# ---- create ----
test_expect_success 'create-container from a local image creates and starts the environment' '
    hakuriver.docker create-container $IMG $ENV1 >$HR_DIR/out &&
    grep -q "created" $HR_DIR/out && [ "$(ctr_state $ENV1)" = running ]'
test_expect_success 'the container carries the environment and shared_dir labels' '
    [ "$(ctr_label $ENV1 hakuriver.environment)" = "$ENV1" ] &&
    [ "$(ctr_label $ENV1 hakuriver.shared_dir)" = "$HR_DIR/shared" ]'
test_expect_success 'creating the same environment again is a 409 that says so' '
    [ "$(code POST /docker/host/create "{\"image_name\":\"$IMG\",\"container_name\":\"$ENV1\"}")" = 409 ] &&
    body POST /docker/host/create "{\"image_name\":\"$IMG\",\"container_name\":\"$ENV1\"}" | grep -q "already exists"'

root=$HR_DIR/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for c in sh sleep ls cat echo; do ln -s busybox "$root/bin/$c"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
tar -C "$root" -cf "$HR_DIR/rootfs.tar" .
test_expect_success 'create-container --rootfs-tar imports the tarball as IMAGE and starts NAME from it' '
    hakuriver.docker create-container --rootfs-tar $HR_DIR/rootfs.tar $IMPORTED $ENV2 >$HR_DIR/out &&
    grep -q imported $HR_DIR/out && [ "$(ctr_state $ENV2)" = running ] &&
    [ "$(hr_docker GET "/images/$(echo $IMPORTED | sed "s|/|%2F|")/json" | head -n 1)" = 200 ]'
test_expect_success 'the imported environment runs from the imported image' '
    [ "$(hr_docker GET /containers/$ENV2/json | tail -n +2 | hr_json Config.Image)" = "$IMPORTED" ]'

# ---- list-containers ----
hr_docker POST "/containers/create?name=$OTHER" \
    "{\"Image\":\"$IMG\",\"Cmd\":[\"sleep\",\"infinity\"],\"Labels\":{\"hakuriver.shared_dir\":\"$HR_DIR/shared\"}}" >/dev/null
test_expect_success 'list-containers shows exactly our environments' '
    hakuriver.docker --json list-containers >$HR_DIR/list.json &&
    names=$(python3 -c "import json,sys; print(\" \".join(c[\"name\"] for c in json.load(open(sys.argv[1]))))" $HR_DIR/list.json) &&
    [ "$names" = "$ENV1 $ENV2" ]'
test_expect_success 'list-containers items have name, image and state' '
    python3 -c "import json,sys
l = json.load(open(sys.argv[1])); c = [x for x in l if x[\"name\"] == sys.argv[2]][0]
assert c[\"image\"] == sys.argv[3] and c[\"state\"] == \"running\" and c[\"status\"] and c[\"id\"], c" \
        $HR_DIR/list.json $ENV1 $IMG'
test_expect_success 'list-containers prints a table by default' '
    hakuriver.docker list-containers >$HR_DIR/out && grep -q "^NAME" $HR_DIR/out &&
    grep -q "^$ENV1 .*running" $HR_DIR/out && ! grep -q "$OTHER" $HR_DIR/out'
test_expect_success 'a container without the environment label is refused (409), not touched' '
    [ "$(code POST /docker/host/delete/$OTHER)" = 409 ] &&
    body POST /docker/host/delete/$OTHER | grep -q "not a HakuRiver environment" &&
    [ "$(hr_docker GET /containers/$OTHER/json | head -n 1)" = 200 ]'

# ---- create-tar ----
test_expect_success 'create-tar writes <shared>/containers/NAME-<ts>.tar with a manifest' '
    hakuriver.docker create-tar $ENV1 >$HR_DIR/out && grep -q "tarball:" $HR_DIR/out &&
    [ "$(tars_of $ENV1 | wc -l)" = 1 ] && grep -q "$TARDIR/$(tars_of $ENV1)" $HR_DIR/out &&
    tar -tf $TARDIR/$(tars_of $ENV1) | grep -qx manifest.json'
test_expect_success 'the tarball names the image hakuriver/NAME:base' '
    tar -xOf $TARDIR/$(tars_of $ENV1) manifest.json | grep -q "hakuriver/$ENV1:base"'
test_expect_success 'the environment container is still running after create-tar' '
    [ "$(ctr_state $ENV1)" = running ]'
test_expect_success 'no partial file is left behind' '! ls -A $TARDIR | grep -q partial'
test_expect_success 'the committed image does not carry the environment labels' '
    hr_docker GET "/images/hakuriver%2F$ENV1:base/json" | tail -n +2 | python3 -c "import json,sys
l = json.load(sys.stdin)[\"Config\"][\"Labels\"] or {}
assert not l.get(\"hakuriver.environment\") and not l.get(\"hakuriver.shared_dir\"), l"'
ts1=$(tar_ts "$ENV1")
touch "$TARDIR/$ENV1-100.tar" "$TARDIR/$ENV1-x-100.tar"
test_expect_success 'a second create-tar replaces the first: one tarball left, with a newer ts' '
    hakuriver.docker --json create-tar $ENV1 >$HR_DIR/out.json &&
    [ "$(tars_of $ENV1 | wc -l)" = 1 ] && ts2=$(tar_ts $ENV1) && [ "$ts2" -gt "$ts1" ] &&
    [ "$(hr_json tarball_path <$HR_DIR/out.json)" = "$TARDIR/$ENV1-$ts2.tar" ] &&
    [ "$(hr_json timestamp <$HR_DIR/out.json)" = "$ts2" ]'
test_expect_success 'create-tar leaves the tarballs of a name that only starts with NAME' '
    [ -f "$TARDIR/$ENV1-x-100.tar" ]'
rm -f "$TARDIR/$ENV1-x-100.tar"

# ---- list-tars ----
test_expect_success 'list-tars (JSON) has the latest tarball and all versions per name' '
    body GET /docker/list > $HR_DIR/tars.json &&
    python3 -c "import json,sys
d = json.load(open(sys.argv[1])); e = d[sys.argv[2]]
assert e[\"latest_tarball\"] == sys.argv[3] + \"/\" + sys.argv[2] + \"-%d.tar\" % e[\"latest_timestamp\"], e
assert len(e[\"all_versions\"]) == 1 and e[\"all_versions\"][0][\"tarball\"] == e[\"latest_tarball\"], e
assert e[\"latest_size_bytes\"] > 0 and e[\"image\"] == \"hakuriver/\" + sys.argv[2] + \":base\", e" \
        $HR_DIR/tars.json $ENV1 $TARDIR'
test_expect_success 'list-tars prints a table by default' '
    hakuriver.docker list-tars >$HR_DIR/out && grep -q "^$ENV1 " $HR_DIR/out'

# ---- stop / start ----
test_expect_success 'stop-container stops it; stopping again is success' '
    hakuriver.docker stop-container $ENV1 >$HR_DIR/out && grep -q stopped $HR_DIR/out &&
    [ "$(ctr_state $ENV1)" = exited ] &&
    hakuriver.docker stop-container $ENV1 >$HR_DIR/out && grep -q "already stopped" $HR_DIR/out'
test_expect_success 'start-container starts it again; starting again is success' '
    hakuriver.docker start-container $ENV1 >$HR_DIR/out && grep -q started $HR_DIR/out &&
    [ "$(ctr_state $ENV1)" = running ] &&
    hakuriver.docker start-container $ENV1 >$HR_DIR/out && grep -q "already running" $HR_DIR/out'

# ---- a client that goes away while its request waits for the worker ----
test_expect_success 'a client that disconnects during create-tar does not hurt the host' '
    curl -s -o /dev/null --max-time 0.05 -X POST -H "Authorization: Bearer $HR_TOKEN" \
        http://127.0.0.1:$HR_PORT/docker/create_tar/$ENV2; 
    for i in $(seq 1 100); do [ -n "$(tars_of $ENV2)" ] && break; sleep 0.1; done;
    [ -n "$(tars_of $ENV2)" ] && [ "$(code GET /docker/host/containers)" = 200 ]'

# ---- delete ----
test_expect_success 'delete-container removes the container and keeps its tarballs' '
    hakuriver.docker delete-container $ENV2 >$HR_DIR/out && grep -q deleted $HR_DIR/out &&
    [ "$(hr_docker GET /containers/$ENV2/json | head -n 1)" = 404 ] && [ -n "$(tars_of $ENV2)" ]'
test_expect_success 'delete-tar deletes every tarball of NAME' '
    touch $TARDIR/$ENV2-100.tar &&
    hakuriver.docker --json delete-tar $ENV2 >$HR_DIR/out.json &&
    [ -z "$(tars_of $ENV2)" ] && grep -q "$ENV2-100.tar" $HR_DIR/out.json'
test_expect_success 'delete-tar of a name without tarballs is a 404 (CLI exit 1 with the message)' '
    [ "$(code POST /docker/delete_tar/$ENV2)" = 404 ] &&
    hakuriver.docker delete-tar $ENV2 2>$HR_DIR/err; [ $? = 1 ] && grep -q "No tarballs" $HR_DIR/err'

# ---- bad input ----
test_expect_success 'a request without a token is refused with 401' '
    c=$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$HR_PORT/docker/host/containers) &&
    [ "$c" = 401 ]'
test_expect_success 'a bad name in the path is a 422 naming it' '
    [ "$(code POST /docker/host/start/-bad)" = 422 ] && body POST /docker/host/start/-bad | grep -q "'"'"'-bad'"'"'" &&
    [ "$(code POST /docker/create_tar/a..b)" = 422 ] &&
    [ "$(code POST "/docker/host/stop/$(head -c 70 /dev/zero | tr "\0" a)")" = 422 ]'
test_expect_success 'a bad container_name in the body is a 422 naming it' '
    body POST /docker/host/create "{\"image_name\":\"$IMG\",\"container_name\":\"bad name!\"}" | grep -q "bad name!" &&
    [ "$(code POST /docker/host/create "{\"image_name\":\"$IMG\",\"container_name\":\"bad name!\"}")" = 422 ]'
test_expect_success 'missing fields and unknown fields are 422 naming the field' '
    body POST /docker/host/create "{\"image_name\":\"$IMG\"}" | grep -q container_name &&
    body POST /docker/host/create "{\"container_name\":\"$ENV1-z\"}" | grep -q image_name &&
    [ "$(code POST /docker/host/create "{}")" = 422 ] &&
    body POST /docker/host/create "{\"image_name\":\"$IMG\",\"container_name\":\"$ENV1-z\",\"bogus\":1}" | grep -q bogus'
test_expect_success 'a bad image name is a 422' '
    [ "$(code POST /docker/host/create "{\"image_name\":\"bad image\",\"container_name\":\"$ENV1-z\"}")" = 422 ]'
test_expect_success 'an unknown container is a 404' '
    [ "$(code POST /docker/host/start/$HR_ENV_PREFIX-nope)" = 404 ] &&
    [ "$(code POST /docker/create_tar/$HR_ENV_PREFIX-nope)" = 404 ] &&
    hakuriver.docker stop-container $HR_ENV_PREFIX-nope 2>$HR_DIR/err; [ $? = 1 ] &&
    grep -q "No environment container" $HR_DIR/err'
test_expect_success 'rootfs_tar must be an absolute, readable tarball' '
    [ "$(code POST /docker/host/create "{\"image_name\":\"$IMPORTED\",\"container_name\":\"$ENV1-z\",\"rootfs_tar\":\"rel.tar\"}")" = 422 ] &&
    body POST /docker/host/create "{\"image_name\":\"$IMPORTED\",\"container_name\":\"$ENV1-z\",\"rootfs_tar\":\"$HR_DIR/none.tar\"}" | grep -q "cannot read rootfs_tar" &&
    echo "not a tar" > $HR_DIR/bad.tar &&
    [ "$(code POST /docker/host/create "{\"image_name\":\"$IMPORTED\",\"container_name\":\"$ENV1-z\",\"rootfs_tar\":\"$HR_DIR/bad.tar\"}")" = 422 ] &&
    [ "$(hr_docker GET /containers/$ENV1-z/json | head -n 1)" = 404 ]'
test_expect_success 'a pull of a nonexistent image fails fast with a clear error naming it' '
    start=$SECONDS &&
    [ "$(code POST /docker/host/create "{\"image_name\":\"hakuriver-test/nonexistent-$HR_ENV_PREFIX:1\",\"container_name\":\"$ENV1-z\"}")" = 502 ] &&
    [ $((SECONDS - start)) -lt 30 ] &&
    body POST /docker/host/create "{\"image_name\":\"hakuriver-test/nonexistent-$HR_ENV_PREFIX:1\",\"container_name\":\"$ENV1-z\"}" |
        grep -q "pull of image .hakuriver-test/nonexistent-$HR_ENV_PREFIX:1. failed" &&
    [ "$(hr_docker GET /containers/$ENV1-z/json | head -n 1)" = 404 ]'
test_expect_success 'unknown paths under /docker/ are 404, wrong methods 405' '
    [ "$(code GET /docker/nope)" = 404 ] && [ "$(code POST /docker/host/start)" = 404 ] &&
    [ "$(code GET /docker/host/create)" = 405 ] && [ "$(code POST /docker/list)" = 405 ] &&
    [ "$(code GET /docker/create_tar/$ENV1)" = 405 ] && [ "$(code POST /docker/host/containers)" = 405 ]'
test_expect_success 'CLI: usage errors exit 2 and --help exits 0' '
    hakuriver.docker create-container only-one; [ $? = 2 ] &&
    hakuriver.docker bogus; [ $? = 2 ] && hakuriver.docker start-container; [ $? = 2 ] &&
    hakuriver.docker create-container a b --frob; [ $? = 2 ] &&
    hakuriver.docker --help | grep -q create-tar'

# ---- other hosts: an unreachable engine, the default environment at start ----
# extra_host NAME SED-ARGS...: starts a host on a free port with a modified copy of the config
extra_host () {
    local name=$1 i try; shift
    for try in 1 2 3; do   # a free-looking port can still be taken: retry with another
        EXTRA_PORT=$(hr_free_port)
        sed -e "s|^host_port = .*|host_port = $EXTRA_PORT|" -e "s|^db_file = .*|db_file = \"$HR_DIR/$name.db\"|" \
            -e "s|^host_ssh_proxy_port = .*|host_ssh_proxy_port = $(hr_free_port)|" \
            "$@" "$HR_CONF" > "$HR_DIR/$name.toml"
        $(hr_daemon_prefix "$name") hakuriver.host --config "$HR_DIR/$name.toml" >>"$HR_DIR/$name.log" 2>&1 &
        EXTRA_PID=$!
        disown "$EXTRA_PID"
        _hr_pids+=("$EXTRA_PID")
        for i in $(seq 1 400); do
            curl -s -o /dev/null "http://127.0.0.1:$EXTRA_PORT/health" && return 0
            kill -0 "$EXTRA_PID" 2>/dev/null || break
            sleep 0.05
        done
    done
    echo "# host $name did not start:"; sed 's/^/#   /' "$HR_DIR/$name.log"; return 1
}
stop_extra () { # a clean stop, so that sanitizer reports reach the log
    local i
    kill -TERM "$EXTRA_PID" 2>/dev/null
    for i in $(seq 1 100); do kill -0 "$EXTRA_PID" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}
extra_api () { curl -s -w '\n%{http_code}' -H "Authorization: Bearer $HR_TOKEN" "$@"; }

extra_host nodocker -e "s|^create_default_environment = .*|socket = \"$HR_DIR/no-docker.sock\"\ncreate_default_environment = false|"
test_expect_success 'an unreachable engine is a 503 naming the socket' '
    out=$(extra_api http://127.0.0.1:$EXTRA_PORT/docker/host/containers) &&
    [ "$(echo "$out" | tail -n 1)" = 503 ] &&
    echo "$out" | grep -q "Docker engine not reachable at $HR_DIR/no-docker.sock"'
test_expect_success 'the host without an engine stops cleanly' 'stop_extra'

# a wedged engine: accepts connections and never answers
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16); held = []
while True: held.append(s.accept())' "$HR_DIR/hung.sock" >/dev/null 2>&1 &
HUNG_PID=$!
disown "$HUNG_PID"
for i in $(seq 1 50); do [ -S "$HR_DIR/hung.sock" ] && break; sleep 0.1; done
extra_host hung -e "s|^create_default_environment = .*|socket = \"$HR_DIR/hung.sock\"\ncreate_default_environment = false|"
test_expect_success 'at shutdown, requests waiting for a wedged engine get 503 and the host exits' '
    extra_api http://127.0.0.1:$EXTRA_PORT/docker/host/containers >$HR_DIR/hung1.out &
    c1=$!; sleep 0.5;
    extra_api -X POST http://127.0.0.1:$EXTRA_PORT/docker/host/start/$ENV1 >$HR_DIR/hung2.out &
    c2=$!; sleep 0.5; start=$SECONDS; kill -TERM $EXTRA_PID; wait $c1 $c2;
    [ "$(tail -n 1 $HR_DIR/hung1.out)" = 503 ] && [ "$(tail -n 1 $HR_DIR/hung2.out)" = 503 ] &&
    grep -q "shutting down" $HR_DIR/hung1.out && grep -q "shutting down" $HR_DIR/hung2.out &&
    stop_extra && [ $((SECONDS - start)) -le 8 ]'
kill "$HUNG_PID" 2>/dev/null

DEF=$HR_ENV_PREFIX-base
extra_host defenv -e "s|^shared_dir = .*|shared_dir = \"$HR_DIR/shared-def\"|" \
    -e "s|^create_default_environment = .*|create_default_environment = true\ndefault_container_name = \"$DEF\"\ninitial_base_image = \"$IMG\"|"
test_expect_success 'at start the host creates the default environment and its tarball in the background' '
    for i in $(seq 1 300); do ls $HR_DIR/shared-def/containers 2>/dev/null | grep -qE "^$DEF-[0-9]+\.tar$" && break; sleep 0.1; done &&
    ls $HR_DIR/shared-def/containers | grep -qE "^$DEF-[0-9]+\.tar$" &&
    [ "$(ctr_state $DEF)" = running ] &&
    grep -q "default environment $DEF created from $IMG" $HR_DIR/defenv.log'
test_expect_success 'that host stops cleanly' 'stop_extra'
extra_host defenv -e "s|^shared_dir = .*|shared_dir = \"$HR_DIR/shared-def\"|" \
    -e "s|^create_default_environment = .*|create_default_environment = true\ndefault_container_name = \"$DEF\"\ninitial_base_image = \"$IMG\"|"
test_expect_success 'a restart finds the tarball and creates nothing' '
    for i in $(seq 1 100); do grep -q "default environment $DEF: tarball .* exists" $HR_DIR/defenv.log && break; sleep 0.1; done &&
    grep -q "default environment $DEF: tarball .* exists" $HR_DIR/defenv.log &&
    [ "$(ls $HR_DIR/shared-def/containers | grep -cE "^$DEF-[0-9]+\.tar$")" = 1 ] && stop_extra'

BAD=$HR_ENV_PREFIX-base2
extra_host defbad -e "s|^shared_dir = .*|shared_dir = \"$HR_DIR/shared-bad\"|" \
    -e "s|^create_default_environment = .*|create_default_environment = true\ndefault_container_name = \"$BAD\"\ninitial_base_image = \"hakuriver-test/nonexistent-$HR_ENV_PREFIX:1\"|"
test_expect_success 'a default environment that cannot be pulled is logged once and the host keeps serving' '
    for i in $(seq 1 300); do grep -q "cannot create the default environment" $HR_DIR/defbad.log && break; sleep 0.1; done &&
    [ "$(grep -c "cannot create the default environment $BAD from hakuriver-test/nonexistent-$HR_ENV_PREFIX:1: pull of image" $HR_DIR/defbad.log)" = 1 ] &&
    grep -q "hakuriver.docker create-container" $HR_DIR/defbad.log &&
    [ "$(extra_api http://127.0.0.1:$EXTRA_PORT/health | tail -n 1)" = 200 ] &&
    [ "$(hr_docker GET /containers/$BAD/json | head -n 1)" = 404 ]'
test_expect_success 'that host stops cleanly too' 'stop_extra'
done_testing
