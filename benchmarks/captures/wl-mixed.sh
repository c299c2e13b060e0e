# kslab issue 16: a mixed workload. Phases: files across CPUs, drop_caches 2 and 3, a long idle
# (several cache_reap periods), memory pressure, /proc/slabinfo writes to several caches, and tasks
# that migrate between nodes while they allocate.
workload() {
	MEMMB=$(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo)
	mount -t tmpfs tmpfs /tmp
	log "phase 1 files begin"
	i=0
	while [ $i -lt $N ]; do
		slabload files /tmp/w$i 800 $i $(peer $i) &
		i=$((i + 1))
	done
	wait
	slabload tree /tmp/tree 3 6 0
	log "phase 1 files end"
	snap 1-files

	log "phase 2 walk begin"
	taskset -c 0 find /proc /sys -xdev > /dev/null 2>&1
	log "phase 2 walk end"
	snap 2-walk

	log "phase 3 drop2 begin"
	echo 2 > /proc/sys/vm/drop_caches
	log "phase 3 drop2 end"
	snap 3-drop2

	log "phase 4 names begin"
	slabload names /tmp/n 1500 0 $LAST 7
	taskset -c $LAST find /sys -xdev > /dev/null 2>&1
	log "phase 4 names end"
	echo 3 > /proc/sys/vm/drop_caches
	log "phase 4 drop3 done"
	snap 4-drop3

	log "phase 5 idle begin"
	sleep 12
	log "phase 5 idle end"
	snap 5-idle

	log "phase 6 retune begin"
	echo "kmalloc-128 40 20 4" > /proc/slabinfo
	log "retune written: kmalloc-128 40 20 4"
	echo "dentry 200 100 2" > /proc/slabinfo
	log "retune written: dentry 200 100 2"
	echo "kmalloc-256 0 10 1" > /proc/slabinfo
	log "retune written: kmalloc-256 0 10 1"
	snap 6a-retuned
	i=0
	while [ $i -lt $N ]; do
		slabload files /tmp/r$i 400 $i $(peer $i) &
		slabload fork 60 $i &
		i=$((i + 1))
	done
	wait
	log "phase 6 retune end"
	snap 6b-after-retune-work

	log "phase 7 migrate begin"
	slabload pipe 3000 0 $LAST &
	p=$!
	sleep 1
	taskset -p -c $(peer 0) $p > /dev/null 2>&1
	sleep 1
	taskset -p -c $LAST $p > /dev/null 2>&1
	wait
	slabload tcp 1000 0 $(peer 0)
	log "phase 7 migrate end"
	snap 7-migrate

	log "phase 8 pressure begin"
	dd if=/dev/zero of=/tmp/big bs=1M count=$((MEMMB * 6 / 10)) 2> /dev/null
	slabload files /tmp/p 600 0 $LAST
	rm -f /tmp/big
	log "phase 8 pressure end"
	snap 8-pressure

	log "phase 9 idle begin"
	sleep 10
	log "phase 9 idle end"
	snap 9-idle
	FINAL=10-final
}
