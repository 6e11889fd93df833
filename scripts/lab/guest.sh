# Guest side of the lab scenarios, sourced by /init (busybox sh). Each
# guest_NAME function is one scenario; it prints LAB-* marker lines on the
# console for the host (scripts/lab.sh) to read. The station binary is
# /bin/badgestation, built with --no-default-features --features lab.

mount_data() {
    if ! mount -t ext4 -o errors=remount-ro /dev/vda /data; then
        echo "LAB-FAIL cannot mount the virtual disk /dev/vda"
        return 1
    fi
    # The station's data directory must exist (`--data-dir` is never created
    # silently); the host formats an empty disk for the first boot.
    mkdir -p /data/station
    export BADGESTATION_DATA_DIR=/data/station
    export DUPLICATE_BADGE_ACTION=silent
}

net_up() {
    ip link set lo up
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
}

# Power cuts: open the database the last cut left (it must open cleanly),
# then record scans P<boot>N<n> until the host kills QEMU.
# Each "recorded" line is printed by `badgestation scan` after the commit:
# it is the acknowledgement the host counts.
guest_powercut() {
    mount_data || return
    if [ "$LAB_weak" = 1 ]; then
        export BADGESTATION_LAB_UNSAFE_SYNCHRONOUS_OFF=1
        echo "LAB-NOTE durability weakened: synchronous=OFF (test-only switch)"
    fi
    if [ -n "$LAB_hub" ]; then
        net_up
        export CLOUD_API_URL="http://$LAB_hub" CLOUD_API_KEY="$LAB_key" STATION_NAME=lab-gate
        # Upload in the background while scans are recorded, so cuts land during syncs.
        ( sleep 1; while :; do badgestation sync --all > /dev/null 2>&1; sleep 0.2; done ) &
    fi
    if out=$(badgestation status 2>&1); then
        echo "LAB-OPEN ok $(echo "$out" | grep '^Total:' | tr -s ' ')"
    else
        echo "LAB-OPEN FAILED"
        echo "$out"
        return
    fi
    echo "LAB-RECORDING"
    # Back to back, 500 badges per `scan` process: each is committed, then
    # its line printed, before the next is read.
    n=1
    while :; do
        badgestation scan $(awk -v b="$LAB_boot" -v s="$n" 'BEGIN { for (i = s; i < s + 500; i++) print "P" b "N" i }') 2>&1
        n=$((n + 500))
    done
}

# After the cuts of the hub scenario: upload everything, then stop cleanly.
guest_drain() {
    mount_data || return
    net_up
    export CLOUD_API_URL="http://$LAB_hub" CLOUD_API_KEY="$LAB_key" STATION_NAME=lab-gate
    if badgestation sync --all > /tmp/sync.out 2>&1; then
        echo "LAB-DRAINED ok"
    else
        echo "LAB-DRAINED FAILED"
        cat /tmp/sync.out
    fi
    badgestation status 2>&1 | grep -E '^(Total|Oldest)'
    umount /data
}

# ------------------------------------------------------------------ readers
# The guest's own USB host sees gadgets made with configfs on dummy_hcd:
# the real usbcore -> usbhid -> hid-generic -> hidraw/evdev path and the
# real cdc-acm tty driver. "Unplug" is unbinding the gadget from its UDC.
G=/sys/kernel/config/usb_gadget

pass() { echo "LAB-PASS $LAB_scenario $*"; }
fail() { echo "LAB-FAIL $LAB_scenario $*"; FAILED=1; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

usb_up() {
    load_modules usb
    mount -t configfs none /sys/kernel/config 2> /dev/null
    [ -d "$G" ] || { fail "no configfs usb_gadget"; return 1; }
    export BADGESTATION_DATA_DIR=/tmp/station DUPLICATE_BADGE_ACTION=silent
    mkdir -p /tmp/station
}

# gadget NAME KIND(hid|acm) VID PID UDC MANUFACTURER PRODUCT SERIAL
gadget() {
    g=$G/$1
    mkdir -p "$g/strings/0x409" "$g/configs/c.1/strings/0x409"
    echo "0x$3" > "$g/idVendor"
    echo "0x$4" > "$g/idProduct"
    echo "$6" > "$g/strings/0x409/manufacturer"
    echo "$7" > "$g/strings/0x409/product"
    echo "$8" > "$g/strings/0x409/serialnumber"
    echo "config" > "$g/configs/c.1/strings/0x409/configuration"
    if [ "$2" = hid ]; then
        mkdir -p "$g/functions/hid.usb0"
        echo 1 > "$g/functions/hid.usb0/protocol"
        echo 1 > "$g/functions/hid.usb0/subclass"
        echo 8 > "$g/functions/hid.usb0/report_length"
        cat /lab/kbd.desc > "$g/functions/hid.usb0/report_desc"
        ln -s "$g/functions/hid.usb0" "$g/configs/c.1/"
    else
        mkdir -p "$g/functions/acm.usb0"
        ln -s "$g/functions/acm.usb0" "$g/configs/c.1/"
    fi
    echo "$5" > "$g/UDC"
}
unplug() { echo "" > "$G/$1/UDC"; }
plug() { echo "$2" > "$G/$1/UDC"; }

# The gadget-side device node of a gadget: /dev/hidgN or /dev/ttyGSN.
gadget_node() {
    if [ -d "$G/$1/functions/hid.usb0" ]; then
        echo "/dev/hidg$(cut -d: -f2 "$G/$1/functions/hid.usb0/dev")"
    else
        echo "/dev/ttyGS$(cat "$G/$1/functions/acm.usb0/port_num")"
    fi
}

# Types DIGITS and Enter as a boot keyboard: a press report and an all-zero
# release report per key, as a keyboard-wedge reader does.
type_badge() { # GADGET DIGITS
    node=$(gadget_node "$1")
    digits=$2
    : > /tmp/reports
    while [ -n "$digits" ]; do
        c=${digits%"${digits#?}"}
        digits=${digits#?}
        case $c in
            0) u=047 ;; 1) u=036 ;; 2) u=037 ;; 3) u=040 ;; 4) u=041 ;;
            5) u=042 ;; 6) u=043 ;; 7) u=044 ;; 8) u=045 ;; 9) u=046 ;;
        esac
        printf "\\000\\000\\$u\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000" >> /tmp/reports
    done
    printf '\000\000\050\000\000\000\000\000\000\000\000\000\000\000\000\000' >> /tmp/reports
    cat /tmp/reports > "$node"
}

# Sends one serial frame (printf format) on the gadget side of a CDC-ACM reader.
send_frame() { # GADGET FORMAT
    node=$(gadget_node "$1")
    stty -F "$node" raw -echo 2> /dev/null
    printf "$2" > "$node"
}

# RDM6300 frame of tag 000042B7C9 (decimal 0004372425) and the ID-12LA
# datasheet frame 0C000621A5 + 8E, CR LF, ETX (decimal 0000401829).
RDM6300_FRAME='\002000042B7C93C\003'
ID12LA_FRAME='\0020C000621A58E\r\n\003'

start_station() { # READERS
    READERS="$1" badgestation run --headless > /tmp/station.out 2> /tmp/station.err &
    STATION=$!
}
stop_station() {
    kill "$STATION" 2> /dev/null
    wait "$STATION" 2> /dev/null
}

# wait_line PATTERN COUNT SECONDS: until /tmp/station.out has COUNT lines matching.
wait_line() {
    i=0
    while [ "$(grep -cE "$1" /tmp/station.out)" -lt "$2" ]; do
        i=$((i + 1))
        [ $i -gt $(($3 * 20)) ] && return 1
        sleep 0.05
    done
}

show_station() {
    echo "--- station output"
    cat /tmp/station.out /tmp/station.err | tail -n 30
    echo "---"
}

# replug_test GADGET UDC READER FEED...: unplug for 1 s while the station
# runs, plug back, time until the station says "connected" again, then
# check that a scan is read through the new connection.
replug_test() {
    gadget=$1 udc=$2 reader=$3
    shift 3
    before=$(grep -c "reader $reader: connected" /tmp/station.out)
    unplug "$gadget"
    if ! wait_line "reader $reader: disconnected" 1 10; then
        fail "$reader: the station did not notice the unplug"
        return
    fi
    sleep 1
    t0=$(uptime_s)
    plug "$gadget" "$udc"
    if ! wait_line "reader $reader: connected" $((before + 1)) 20; then
        fail "$reader: not reconnected within 20 s of the replug"
        return
    fi
    t1=$(uptime_s)
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    echo "LAB-RECONNECT $reader $took"
    recorded=$(grep -c '^.* scan   recorded' /tmp/station.out)
    "$@"
    if ! wait_line ' scan   recorded' $((recorded + 1)) 15; then
        fail "$reader: no scan recorded after the replug"
        return
    fi
    if awk -v t="$took" 'BEGIN { exit !(t <= 2.0) }'; then
        echo "LAB-OK $reader reconnected in ${took} s"
    else
        fail "$reader: reconnect took ${took} s (more than 2 s)"
    fi
}

# The Sycreader keyboard-wedge reader (ffff:0035) on UDC $1.
wedge_gadget() {
    gadget wedge hid ffff 0035 "${1:-dummy_udc.0}" "Sycreader RFID Technology Co., Ltd" "SYC ID&IC USB Reader" 08FF20140315
}

# The keyboard-wedge reader through hidraw, with the exclusive grab of its
# evdev node on (the profile's default): the station records the badge and
# the guest's text console (tty1, where the kernel's keyboard handler
# delivers keys) receives nothing. Then unplug/replug.
guest_wedge_grab() {
    usb_up || return
    wedge_gadget
    cat /dev/tty1 > /tmp/vt.out 2>&1 &
    vt=$!
    start_station "wedge=wedge-hid:ffff:0035"
    wait_line 'reader wedge: connected' 1 20 || { fail "the wedge reader never connected"; show_station; return; }
    grep -q 'cannot grab' /tmp/station.out /tmp/station.err && fail "the grab failed"
    type_badge wedge 0004372425
    wait_line 'scan   recorded .*0004372425' 1 15 || fail "badge 0004372425 not recorded"
    sleep 1
    leaked=$(wc -c < /tmp/vt.out)
    [ "$leaked" = 0 ] || fail "the keystrokes reached the console: $(cat /tmp/vt.out)"
    replug_test wedge dummy_udc.0 wedge type_badge wedge 0001234567
    stop_station
    kill $vt 2> /dev/null
    show_station
    [ -z "$FAILED" ] && pass "hidraw read + evdev grab: badge recorded, 0 bytes reached the console"
}

# Control for the console check: the same reader with grab = false (a profile
# in DATA_DIR/readers). The station still records the badge through hidraw,
# and the digits do reach the console, so the check above can fail.
guest_wedge_nograb() {
    usb_up || return
    mkdir -p /tmp/station/readers
    sed 's/^grab = true/grab = false/' /lab/wedge-hid.toml > /tmp/station/readers/wedge-nograb.toml
    wedge_gadget
    cat /dev/tty1 > /tmp/vt.out 2>&1 &
    vt=$!
    start_station "wedge=wedge-nograb:ffff:0035"
    wait_line 'reader wedge: connected' 1 20 || { fail "the wedge reader never connected"; show_station; return; }
    type_badge wedge 0004372425
    wait_line 'scan   recorded .*0004372425' 1 15 || fail "badge 0004372425 not recorded"
    sleep 1
    kill $vt 2> /dev/null
    stop_station
    show_station
    if grep -q 0004372425 /tmp/vt.out; then
        [ -z "$FAILED" ] && pass "hidraw read without the grab: recorded, and the console got '$(tr -d '\r\n' < /tmp/vt.out)' (the leak the grab stops)"
    else
        fail "without the grab the console should have received the digits; got $(wc -c < /tmp/vt.out) bytes"
    fi
}

serial_test() { # PROFILE VID PID FRAME DECIMAL PRODUCT
    usb_up || return
    gadget ser acm "$2" "$3" dummy_udc.0 Lab "$6" LAB0001
    start_station "ser=$1:$2:$3"
    wait_line 'reader ser: connected \(/dev/ttyACM' 1 20 || { fail "the $1 reader never connected"; show_station; return; }
    send_frame ser "$4"
    wait_line "scan   recorded .*$5" 1 15 || fail "badge $5 not recorded from the $1 frame"
    replug_test ser dummy_udc.0 ser send_frame ser "$4"
    stop_station
    show_station
    n=$(grep -c "scan   .*$5" /tmp/station.out)
    [ -z "$FAILED" ] && pass "$1 frame on CDC-ACM: $5 read before and after a replug ($n scans)"
}
guest_serial_rdm6300() { serial_test rdm6300 1a86 7523 "$RDM6300_FRAME" 0004372425 USB-Serial_CH340; }
guest_serial_id12la() { serial_test id-12la 0403 6015 "$ID12LA_FRAME" 0000401829 FT231X_USB_UART; }

# Two readers at once: the wedge (hidraw) and an RDM6300 (CDC-ACM) on two
# UDCs, each scan stored with its own reader id.
guest_two_readers() {
    usb_up || return
    wedge_gadget
    gadget ser acm 1a86 7523 dummy_udc.1 Lab USB-Serial_CH340 LAB0001
    start_station "wedge=wedge-hid:ffff:0035,gate=rdm6300:1a86:7523"
    wait_line 'reader (wedge|gate): connected' 2 20 || { fail "both readers should connect"; show_station; return; }
    type_badge wedge 0001111111 &
    typer=$!
    send_frame ser "$RDM6300_FRAME"
    wait $typer
    wait_line 'scan   recorded' 2 15 || fail "expected two scans"
    stop_station
    show_station
    scans=$(badgestation scans list --limit 10 2> /dev/null)
    echo "$scans"
    echo "$scans" | grep -q '0001111111' || fail "the wedge scan is missing"
    echo "$scans" | grep -q '0004372425' || fail "the RDM6300 scan is missing"
    [ -z "$FAILED" ] && pass "wedge + RDM6300 at once: both scans recorded"
}

# The udev rules of hardware/udev/ under the real systemd-udevd (from
# Debian's udev package; no systemd needed). Only our rules file is
# installed, so the group and mode of each node come from it: the wedge's
# hidraw and event nodes plugdev 0660, the serial readers' ttyACM nodes
# dialout 0660, and a serial device with an id we do not know stays root
# 0600. Then `badgestation devices` must list what was plugged, each with
# its profile.
guest_udev_devices() {
    usb_up || return
    /lib/systemd/systemd-udevd --daemon 2> /tmp/udevd.err || { fail "systemd-udevd did not start: $(cat /tmp/udevd.err)"; return; }
    wedge_gadget dummy_udc.0
    gadget rdm acm 1a86 7523 dummy_udc.1 Lab USB-Serial_CH340 LAB0001
    gadget id12 acm 0403 6015 dummy_udc.2 Lab FT231X_USB_UART LAB0002
    gadget other acm 1234 5678 dummy_udc.3 Lab Unknown_serial LAB0003
    udevadm trigger --action=add > /dev/null 2>&1
    udevadm settle -t 60
    perms() { stat -c '%G %a' "$1"; }
    node_of_usb() { # CLASS VID PID: the /dev node of a class device of that USB id
        for d in /sys/class/$1/*; do
            u=$(readlink -f "$d/device")
            while [ "$u" != / ] && [ ! -f "$u/idVendor" ]; do u=$(dirname "$u"); done
            [ -f "$u/idVendor" ] || continue
            if [ "$(cat "$u/idVendor")" = "$2" ] && [ "$(cat "$u/idProduct")" = "$3" ]; then
                echo "/dev/${d##*/}" | sed 's|/dev/event|/dev/input/event|'
            fi
        done
    }
    check() { # WHAT NODE EXPECTED
        if [ -z "$2" ] || [ ! -e "$2" ]; then fail "$1: no device node"; return; fi
        got=$(perms "$2")
        echo "  $1: $2 $got"
        [ "$got" = "$3" ] || fail "$1: $2 is '$got', the rules say '$3'"
    }
    echo "device nodes after udev:"
    check "wedge hidraw" "$(node_of_usb hidraw ffff 0035 | head -1)" "plugdev 660"
    check "wedge evdev" "$(node_of_usb input ffff 0035 | grep event | head -1)" "plugdev 660"
    check "rdm6300 tty" "$(node_of_usb tty 1a86 7523 | head -1)" "dialout 660"
    check "id-12la tty" "$(node_of_usb tty 0403 6015 | head -1)" "dialout 660"
    check "unknown tty" "$(node_of_usb tty 1234 5678 | head -1)" "root 600"
    badgestation devices > /tmp/devices.out 2>&1
    cat /tmp/devices.out
    grep -qE "$(node_of_usb hidraw ffff 0035 | head -1) +ffff:0035 .*profile: wedge-hid" /tmp/devices.out || fail "devices: the wedge is not listed with profile wedge-hid"
    grep -qE "$(node_of_usb tty 1a86 7523 | head -1) +1a86:7523 .*profile: rdm6300" /tmp/devices.out || fail "devices: the RDM6300 board is not listed with profile rdm6300"
    grep -qE "$(node_of_usb tty 0403 6015 | head -1) +0403:6015 .*profile: .*id-12la" /tmp/devices.out || fail "devices: the ID-12LA board is not listed with profile id-12la"
    grep -qE "1234:5678 .*no matching profile" /tmp/devices.out || fail "devices: the unknown serial device should have no profile"
    udevadm control --exit 2> /dev/null
    [ -z "$FAILED" ] && pass "udev rules applied (plugdev/dialout 0660, unknown device root 0600); devices lists all 4 with the right profiles"
}
