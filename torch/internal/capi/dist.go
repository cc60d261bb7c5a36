package capi

/*
#include <stdlib.h>
#include "hlshim.h"
*/
import "C"

import "unsafe"

// Group is an owned process-group handle.
type Group = C.hl_group

// GroupNew joins a process group (rank 0 serves the rendezvous store).
func GroupNew(host string, port, rank, world int, deviceType int32, timeoutMS int64) (Group, error) {
	h := C.CString(host)
	defer C.free(unsafe.Pointer(h))
	var g Group
	err := check(C.hl_group_new(h, C.int32_t(port), C.int32_t(rank), C.int32_t(world), C.int32_t(deviceType), C.int64_t(timeoutMS), &g))
	return g, err
}

// GroupFree leaves the group.
func GroupFree(g Group) { C.hl_group_free(g) }

// GroupAllReduce sums or averages ts in place across the group.
func GroupAllReduce(g Group, ts []Tensor, average bool, bucketBytes int64) error {
	return check(C.hl_group_allreduce(g, handles(ts), C.int32_t(len(ts)), b2i(average), C.int64_t(bucketBytes)))
}

// GroupBroadcast copies root's ts into every rank's.
func GroupBroadcast(g Group, ts []Tensor, root int) error {
	return check(C.hl_group_broadcast(g, handles(ts), C.int32_t(len(ts)), C.int32_t(root)))
}

// GroupBarrier waits for every rank.
func GroupBarrier(g Group) error { return check(C.hl_group_barrier(g)) }
