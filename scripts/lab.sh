#!/usr/bin/env bash
# The lab: the station in a QEMU guest (TCG, a stock Debian kernel, a busybox
# initramfs), with real power cuts (QEMU killed at random moments) and real
# USB readers (dummy_hcd + configfs gadgets seen by the guest's own USB host).
#
#   scripts/lab.sh list          the scenarios
#   scripts/lab.sh run NAME...   run some
#   scripts/lab.sh ci            the short set .ci/run uses
#   scripts/lab.sh all           every scenario, with 100+ power cuts
#
# Everything it builds (kernel from the linux-image .deb, initramfs, station
# binary for the guest) is cached under target/lab/. It needs Debian packages
# only: qemu-system-x86, busybox-static, cpio, kmod, e2fsprogs, sqlite3; as
# root it installs the missing ones with apt-get. See README.md, "The lab".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LAB=$ROOT/target/lab
mkdir -p "$LAB"

say() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- packages
need_packages() {
    local missing=()
    command -v qemu-system-x86_64 > /dev/null || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] && file_is_static /bin/busybox || missing+=(busybox-static)
    command -v cpio > /dev/null || missing+=(cpio)
    command -v depmod > /dev/null || [ -x /sbin/depmod ] || missing+=(kmod)
    command -v debugfs > /dev/null || [ -x /sbin/debugfs ] || missing+=(e2fsprogs)
    command -v sqlite3 > /dev/null || missing+=(sqlite3)
    command -v strip > /dev/null || missing+=(binutils)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        die "missing packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
    fi
    say "installing ${missing[*]} with apt-get"
    apt-get update -q > "$LAB/apt.log" 2>&1 || die "apt-get update failed (see $LAB/apt.log)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >> "$LAB/apt.log" 2>&1 \
        || die "apt-get install ${missing[*]} failed (see $LAB/apt.log)"
}
file_is_static() { ! ldd "$1" > /dev/null 2>&1; }
export PATH=$PATH:/sbin:/usr/sbin

# ---------------------------------------------------------------- kernel
# A stock Debian kernel (the standard flavour: -cloud has no USB/HID modules),
# unpacked from its .deb. The version is whatever linux-image-amd64 points at.
kernel() {
    if [ ! -f "$LAB/kernel.version" ]; then
        local pkg
        pkg=$(apt-cache depends linux-image-amd64 2> /dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        if [ -z "$pkg" ]; then
            [ "$(id -u)" = 0 ] && apt-get update -q > "$LAB/apt.log" 2>&1
            pkg=$(apt-cache depends linux-image-amd64 2> /dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
        fi
        [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 with apt-cache; run apt-get update"
        say "downloading $pkg (Debian kernel package, ~70 MB)"
        rm -rf "$LAB/deb" "$LAB/kroot" && mkdir -p "$LAB/deb" "$LAB/kroot"
        (cd "$LAB/deb" && apt-get download -q "$pkg" > "$LAB/deb/download.log" 2>&1) \
            || die "apt-get download $pkg failed (see $LAB/deb/download.log)"
        dpkg-deb -x "$LAB"/deb/*.deb "$LAB/kroot"
        local kver
        kver=$(ls "$LAB/kroot/lib/modules")
        depmod -b "$LAB/kroot" "$kver"
        echo "$kver" > "$LAB/kernel.version"
    fi
    KVER=$(cat "$LAB/kernel.version")
    VMLINUZ=$LAB/kroot/boot/vmlinuz-$KVER
}

# Module closure in load order: each module after the ones it needs.
module_order() {
    local dep=$LAB/kroot/lib/modules/$KVER/modules.dep seen=" " out=()
    visit() {
        local path line d
        path=$(grep -E "/$1\.ko:" "$dep" | head -1 | cut -d: -f1)
        [ -n "$path" ] || die "kernel module $1 not found in $KVER"
        case "$seen" in *" $path "*) return ;; esac
        seen="$seen$path "
        line=$(grep -E "^$path:" "$dep" | cut -d: -f2)
        # modules.dep lists the full closure; visit each so the order is right.
        for d in $line; do
            visit "$(basename "$d" .ko)"
        done
        out+=("$path")
    }
    for m in "$@"; do visit "$m"; done
    printf '%s\n' "${out[@]}"
}

# ---------------------------------------------------------------- binaries
# The station for the guest: no window, no hub, plus the test-only `lab`
# feature (the synchronous=OFF switch of the weakened run). The hub runs on
# the host from the default build.
binaries() {
    say "building the guest station (cargo build --no-default-features --features lab)"
    cargo build -q --no-default-features --features lab --bin badgestation
    mkdir -p "$LAB/bin"
    if ! cmp -s target/debug/badgestation "$LAB/bin/badgestation.guest.unstripped"; then
        cp target/debug/badgestation "$LAB/bin/badgestation.guest.unstripped"
        strip -o "$LAB/bin/badgestation.guest" target/debug/badgestation
    fi
    say "building the host hub (cargo build)"
    cargo build -q --bin badgestation
    cp target/debug/badgestation "$LAB/bin/badgestation.host"
}

# ---------------------------------------------------------------- initramfs
initramfs() {
    local out=$LAB/initrd.gz stamp inputs
    inputs=("$LAB/bin/badgestation.guest" scripts/lab/init scripts/lab/guest.sh hardware/udev/99-badgestation.rules
        hardware/readers/wedge-hid.toml "$0")
    if [ -f "$out" ]; then
        stamp=1
        for f in "${inputs[@]}"; do [ "$f" -nt "$out" ] && stamp=0; done
        [ $stamp = 1 ] && { INITRD=$out; return; }
    fi
    say "building the initramfs (busybox, kernel modules, station binary)"
    local r=$LAB/initramfs
    rm -rf "$r" && mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,data,lab,usr/bin,usr/sbin,lib/modules,etc/udev/rules.d}
    cp /bin/busybox "$r/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$r/bin/$applet" ] || ln -s busybox "$r/bin/$applet"
    done
    cp scripts/lab/init "$r/init" && chmod +x "$r/init"
    cp scripts/lab/guest.sh "$r/lab/guest.sh"
    cp "$LAB/bin/badgestation.guest" "$r/bin/badgestation"
    # The shared libraries the station links (libc, libgcc_s, libm, ld.so).
    for lib in $(ldd "$LAB/bin/badgestation.guest" | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
    done
    cp hardware/udev/99-badgestation.rules "$r/etc/udev/rules.d/"
    cp hardware/readers/wedge-hid.toml "$r/lab/"
    # The standard 63-byte boot keyboard report descriptor for the HID gadget.
    printf '\x05\x01\x09\x06\xa1\x01\x05\x07\x19\xe0\x29\xe7\x15\x00\x25\x01\x75\x01\x95\x08\x81\x02\x95\x01\x75\x08\x81\x03\x95\x05\x75\x01\x05\x08\x19\x01\x29\x05\x91\x02\x95\x01\x75\x03\x91\x03\x95\x06\x75\x08\x15\x00\x25\x65\x05\x07\x19\x00\x29\x65\x81\x00\xc0' > "$r/lab/kbd.desc"
    [ "$(wc -c < "$r/lab/kbd.desc")" = 63 ] || die "the keyboard report descriptor is not 63 bytes"
    # systemd-udevd (udevadm is the same binary) and the libraries it links.
    cp "$LAB/udevroot/bin/udevadm" "$r/bin/udevadm"
    mkdir -p "$r/lib/systemd" && ln -sf /bin/udevadm "$r/lib/systemd/systemd-udevd"
    for lib in $(ldd "$LAB/udevroot/bin/udevadm" | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
    done
    printf 'root:x:0:\ntty:x:5:\ndialout:x:20:\ninput:x:101:\nplugdev:x:46:\n' > "$r/etc/group"
    printf 'root:x:0:0:root:/:/bin/sh\n' > "$r/etc/passwd"
    local kmods=$LAB/kroot/lib/modules/$KVER
    module_order virtio_pci virtio_blk virtio_net ext4 crc32c_generic > "$r/lab/modules.base"
    module_order configfs dummy_hcd libcomposite usb_f_hid usb_f_acm cdc-acm usbhid hid-generic evdev > "$r/lab/modules.usb"
    cat "$r/lab/modules.base" "$r/lab/modules.usb" | while read -r ko; do
        mkdir -p "$r/lib/modules/$(dirname "$ko")" && cp "$kmods/$ko" "$r/lib/modules/$ko"
    done
    (cd "$r" && find . | cpio -o -H newc --quiet | gzip -1 > "$out.tmp") && mv "$out.tmp" "$out"
    say "initramfs: $(du -h "$out" | cut -f1)"
    INITRD=$out
}

# systemd-udevd and udevadm (one binary) from Debian's udev package, unpacked, not installed.
udev_tools() {
    if [ ! -x "$LAB/udevroot/bin/udevadm" ]; then
        say "downloading Debian's udev package (systemd-udevd for the guest)"
        rm -rf "$LAB/deb-udev" "$LAB/udevroot" && mkdir -p "$LAB/deb-udev"
        (cd "$LAB/deb-udev" && apt-get download -q udev > download.log 2>&1) \
            || die "apt-get download udev failed (see $LAB/deb-udev/download.log)"
        dpkg-deb -x "$LAB"/deb-udev/udev_*.deb "$LAB/udevroot"
    fi
}

build() {
    need_packages
    kernel
    udev_tools
    binaries
    initramfs
}

# ---------------------------------------------------------------- QEMU
# boot_guest LOG DISK CMDLINE...: starts QEMU in the background, sets QEMU_PID.
# The disk uses cache=writethrough (see README, "Why a killed QEMU is a power cut").
boot_guest() {
    local log=$1 disk=$2
    shift 2
    : > "$log"
    local drive=()
    [ -n "$disk" ] && drive=(-drive "file=$disk,format=raw,if=virtio,cache=writethrough")
    qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -no-reboot -display none -monitor none \
        -kernel "$VMLINUZ" -initrd "$INITRD" \
        -append "console=ttyS0 panic=-1 quiet loglevel=1 no_timer_check $*" \
        -serial "file:$log" "${drive[@]}" \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
        > "$log.qemu" 2>&1 &
    QEMU_PID=$!
    sleep 0.3
    if ! kill -0 "$QEMU_PID" 2> /dev/null; then
        cat "$log.qemu" >&2
        die "QEMU did not start (see $log.qemu)"
    fi
}

# wait_for LOG PATTERN SECONDS: waits until LOG has a line matching PATTERN.
wait_for() {
    local log=$1 pattern=$2 limit=$3 start=$SECONDS
    while ! grep -qE "$pattern" "$log"; do
        if ! kill -0 "$QEMU_PID" 2> /dev/null; then return 1; fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then return 1; fi
        sleep 0.2
    done
}

stop_guest() {
    if [ -n "${QEMU_PID:-}" ] && kill -0 "$QEMU_PID" 2> /dev/null; then
        kill -9 "$QEMU_PID" 2> /dev/null || true
    fi
    [ -n "${QEMU_PID:-}" ] && wait "$QEMU_PID" 2> /dev/null || true
    QEMU_PID=
}

# Waits for a guest that powers itself off.
wait_guest() {
    local limit=$1 start=$SECONDS
    while kill -0 "$QEMU_PID" 2> /dev/null; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            say "the guest did not finish within ${limit}s; killing it"
            stop_guest
            return 1
        fi
        sleep 0.2
    done
    wait "$QEMU_PID" 2> /dev/null || true
    QEMU_PID=
}

HUB_PID=
cleanup() {
    stop_guest
    if [ -n "$HUB_PID" ]; then kill "$HUB_PID" 2> /dev/null || true; wait "$HUB_PID" 2> /dev/null || true; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- checks on the host
# The scans in the station database on DISK, after the journal replay a
# kernel would do at mount (done on a copy, so the guest replays its own).
# Prints "integrity=<result>" then one badge id per line.
disk_scans() {
    local disk=$1 work=$2
    rm -rf "$work" && mkdir -p "$work"
    cp --sparse=always "$disk" "$work/disk.img"
    local rc=0
    e2fsck -fy "$work/disk.img" > "$work/fsck.log" 2>&1 || rc=$?
    if [ $rc -ge 4 ]; then
        echo "integrity=filesystem-damaged(e2fsck exit $rc)"
        return
    fi
    debugfs -R "dump /station/badgestation.db $work/badgestation.db" "$work/disk.img" > /dev/null 2>&1
    debugfs -R "dump /station/badgestation.db-wal $work/badgestation.db-wal" "$work/disk.img" > /dev/null 2>&1
    [ -s "$work/badgestation.db-wal" ] || rm -f "$work/badgestation.db-wal"
    if [ ! -s "$work/badgestation.db" ]; then
        echo "integrity=no-database"
        return
    fi
    echo "integrity=$( (sqlite3 "$work/badgestation.db" 'PRAGMA integrity_check' 2>&1 || true) | tr '\n' ' ' | sed 's/ $//')"
    sqlite3 "$work/badgestation.db" 'SELECT badge_id FROM scans' 2> "$work/select.err" || true
}

# ---------------------------------------------------------------- power cuts
RESULTS=()
result() { # NAME PASS|FAIL DETAIL
    printf '%s %-22s %s\n' "$2" "$1" "$3"
    RESULTS+=("$2 $1 $3")
}

# powercut NAME CUTS [weak] [hub]
powercut() {
    local name=$1 cuts=$2 weak=${3:-0} hub=${4:-0}
    local dir=$LAB/run/$name
    rm -rf "$dir" && mkdir -p "$dir"
    local disk=$dir/disk.img acked=$dir/acked.txt
    truncate -s 64M "$disk"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$disk"
    : > "$acked"
    local hub_args="" key
    if [ "$hub" = 1 ]; then
        key=lab-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
        local port
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2> /dev/null \
            || shuf -i 20000-60000 -n 1)
        HUB_API_KEY=$key "$LAB/bin/badgestation.host" hub --database "$dir/hub.db" --listen "127.0.0.1:$port" \
            > "$dir/hub.log" 2>&1 &
        HUB_PID=$!
        sleep 1
        kill -0 "$HUB_PID" 2> /dev/null || { cat "$dir/hub.log"; die "the hub did not start (see $dir/hub.log)"; }
        # QEMU user networking: the guest reaches the host's 127.0.0.1 as 10.0.2.2.
        hub_args="lab.hub=10.0.2.2:$port lab.key=$key"
        say "$name: hub on 127.0.0.1:$port (the guest sees it as 10.0.2.2:$port)"
    fi
    local fail=0 lost_total=0 open_fail=0 dup_total=0 damaged="" boot=0
    say "$name: $cuts power cuts$([ "$weak" = 1 ] && echo ', durability WEAKENED (synchronous=OFF)')"
    for boot in $(seq 1 "$cuts"); do
        local log=$dir/boot$boot.log
        boot_guest "$log" "$disk" lab.scenario=powercut lab.boot="$boot" lab.weak="$weak" $hub_args
        if ! wait_for "$log" '^LAB-RECORDING|^LAB-OPEN FAILED|^LAB-FAIL' 120; then
            stop_guest
            say "boot $boot: the guest did not start recording (see $log)"
            fail=1
            break
        fi
        if grep -qE '^LAB-OPEN FAILED|^LAB-FAIL' "$log"; then
            open_fail=$((open_fail + 1))
            say "boot $boot: the station could not open the database after the last cut:"
            sed -n '/^LAB-OPEN FAILED/,$p' "$log" | head -20
            stop_guest
            fail=1
            break
        fi
        # Cut at a random moment: 0.2 to 6 s into recording (2 to 12 s with the hub, whose
        # uploads share the guest's one CPU with the recording).
        local lo=20 span=580
        [ "$hub" = 1 ] && lo=200 span=1000
        sleep "$(awk -v r="$RANDOM" -v lo=$lo -v span=$span 'BEGIN { printf "%.2f", (lo + r % span) / 100 }')"
        kill -9 "$QEMU_PID"
        wait "$QEMU_PID" 2> /dev/null || true
        QEMU_PID=
        # Acknowledged = a complete "recorded" line on the console.
        grep -aE '^recorded +#[0-9]+ +P[0-9]+N[0-9]+ ' "$log" | awk '{print $3}' >> "$acked" || true
        local found=$dir/found.txt
        disk_scans "$disk" "$dir/check" > "$found"
        local integrity lost dups
        integrity=$(head -1 "$found")
        lost=$(sort "$acked" | comm -23 - <(tail -n +2 "$found" | sort -u) | wc -l)
        dups=$(tail -n +2 "$found" | sort | uniq -d | wc -l)
        local n_acked
        n_acked=$(wc -l < "$acked")
        printf '  cut %3d: acknowledged so far %5d, lost %d, duplicated %d, %s\n' "$boot" "$n_acked" "$lost" "$dups" "$integrity"
        lost_total=$lost
        dup_total=$dups
        if [ "$integrity" != "integrity=ok" ]; then
            fail=1
            damaged="; database damaged after cut $boot: $(echo "${integrity#integrity=}" | cut -c1-70)"
            break
        fi
    done
    local n_acked
    n_acked=$(wc -l < "$acked")
    local hub_note=""
    if [ "$hub" = 1 ] && [ $fail = 0 ]; then
        local log=$dir/drain.log
        boot_guest "$log" "$disk" lab.scenario=drain $hub_args
        wait_guest 300 || true
        if ! grep -q '^LAB-DRAINED ok' "$log"; then
            say "the final upload did not finish (see $log)"
            fail=1
        fi
        local station_total hub_total hub_missing hub_dups
        disk_scans "$disk" "$dir/check" > "$dir/found.txt"
        station_total=$(($(wc -l < "$dir/found.txt") - 1))
        sqlite3 "$dir/hub.db" "SELECT badge_id FROM scans WHERE station_name='lab-gate'" > "$dir/hub.txt"
        hub_total=$(wc -l < "$dir/hub.txt")
        hub_missing=$(sort "$acked" | comm -23 - <(sort -u "$dir/hub.txt") | wc -l)
        hub_dups=$(sort "$dir/hub.txt" | uniq -d | wc -l)
        hub_note=", hub: $hub_total scans for $station_total at the station, $hub_missing acknowledged missing, $hub_dups duplicated"
        if [ "$hub_total" != "$station_total" ] || [ "$hub_missing" != 0 ] || [ "$hub_dups" != 0 ]; then fail=1; fi
        kill "$HUB_PID" 2> /dev/null || true
        wait "$HUB_PID" 2> /dev/null || true
        HUB_PID=
    fi
    local detail="$boot cuts, $n_acked acknowledged, $lost_total lost, $dup_total duplicated$hub_note$damaged"
    if [ "$weak" = 1 ]; then
        # The weakened run passes when the check caught losses: it proves the check can fail.
        if [ "$lost_total" -gt 0 ]; then
            result "$name" PASS "$detail (the check caught the weakened durability, as it must)"
        else
            result "$name" FAIL "$detail (synchronous=OFF lost nothing: this check could not tell)"
        fi
    elif [ $fail = 0 ] && [ "$lost_total" = 0 ] && [ "$dup_total" = 0 ]; then
        result "$name" PASS "$detail"
    else
        result "$name" FAIL "$detail"
    fi
}

# ---------------------------------------------------------------- reader scenarios
RECONNECTS=()
# reader NAME: one guest boot running guest_NAME (dashes become underscores).
reader() {
    local name=$1 dir=$LAB/run/$1
    rm -rf "$dir" && mkdir -p "$dir"
    local log=$dir/guest.log
    say "$name: booting the guest"
    boot_guest "$log" "" lab.scenario="${name//-/_}"
    wait_guest 300 || true
    # The guest's story, minus the kernel's.
    grep -aE '^(LAB-|  |---|[0-9]{2}:[0-9]{2}|reader|Serial|HID|READERS|device)' "$log" | grep -av '^LAB-GUEST' | sed 's/^/  | /' || true
    local r
    while read -r _ reader secs; do
        RECONNECTS+=("$name $reader ${secs}s")
    done < <(grep -a '^LAB-RECONNECT' "$log" || true)
    if grep -qa '^LAB-FAIL' "$log"; then
        result "$name" FAIL "$(grep -a '^LAB-FAIL' "$log" | head -3 | cut -d' ' -f3- | tr '\n' ';')"
    elif r=$(grep -a '^LAB-PASS' "$log" | head -1) && [ -n "$r" ]; then
        local reconnect
        reconnect=$( (grep -a '^LAB-RECONNECT' "$log" || true) | awk '{printf " reconnect %ss", $3}')
        result "$name" PASS "$(echo "$r" | cut -d' ' -f3-)${reconnect}"
    else
        result "$name" FAIL "no result from the guest (see $log)"
    fi
}

# ---------------------------------------------------------------- scenarios
SCENARIOS=(
    "wedge-grab:keyboard-wedge gadget (ffff:0035) read through hidraw with the evdev grab: recorded, nothing on the console, unplug/replug (CI)"
    "wedge-nograb:control: the same with grab = false; the digits must reach the console"
    "serial-rdm6300:RDM6300 frames on a CDC-ACM gadget (1a86:7523), unplug/replug"
    "serial-id12la:ID-12LA frames (CR LF before ETX) on a CDC-ACM gadget (0403:6015), unplug/replug"
    "two-readers:the wedge and an RDM6300 at once"
    "udev-devices:hardware/udev rules under systemd-udevd, node groups/modes, badgestation devices"
    "powercut-5:5 power cuts while recording (CI)"
    "powercut-100:100 power cuts while recording"
    "powercut-weakened:the same with synchronous=OFF (test-only switch); must report lost scans"
    "powercut-hub-3:3 power cuts while recording and uploading to a hub on the host (CI)"
    "powercut-hub-20:20 power cuts while recording and uploading to a hub on the host"
)
CI_SET=(wedge-grab powercut-5 powercut-hub-3)
ALL_SET=(wedge-nograb serial-rdm6300 serial-id12la two-readers udev-devices powercut-weakened powercut-hub-20 powercut-100)

run_one() {
    case "$1" in
        powercut-5) powercut "$1" 5 ;;
        powercut-100) powercut "$1" 100 ;;
        powercut-weakened) powercut "$1" 10 1 ;;
        powercut-hub-3) powercut "$1" 3 0 1 ;;
        powercut-hub-20) powercut "$1" 20 0 1 ;;
        wedge-grab | wedge-nograb | serial-rdm6300 | serial-id12la | two-readers | udev-devices) reader "$1" ;;
        *) die "no scenario $1; see scripts/lab.sh list" ;;
    esac
}

run_set() {
    build
    local start=$SECONDS
    for s in "$@"; do run_one "$s"; done
    echo
    echo "== lab summary ($((SECONDS - start)) s)"
    local failed=0
    for r in "${RESULTS[@]}"; do
        echo "$r"
        case "$r" in FAIL*) failed=1 ;; esac
    done
    for r in "${RECONNECTS[@]}"; do echo "reconnect: $r"; done
    [ $failed = 0 ] || { echo "lab: FAILED"; exit 1; }
    echo "lab: all passed"
}

# In a function, and exit right after: bash reads a script as it runs, so an
# edit of this file during a long `all` must not change what the run does.
main() {
case "${1:-}" in
    list) for s in "${SCENARIOS[@]}"; do printf '%-20s %s\n' "${s%%:*}" "${s#*:}"; done ;;
    run) shift; [ $# -gt 0 ] || die "usage: scripts/lab.sh run NAME..."; run_set "$@" ;;
    ci) run_set "${CI_SET[@]}" ;;
    all) run_set "${CI_SET[@]}" "${ALL_SET[@]}" ;;
    build) build ;;
    *) echo "usage: scripts/lab.sh list | run NAME... | ci | all | build" >&2; exit 2 ;;
esac
}
main "$@"; exit $?
