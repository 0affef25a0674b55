package recorder

// The encode queues: one per worker, each camera always on the same one,
// so that its chunks stay in order. A queue holds at most maxQueuedChunks
// chunks waiting (Record waits for room: back-pressure), and gives them
// up unencoded on a stop (abandon): they are read again after a restart.

import (
	"sync"

	"github.com/streamd/streamd/pkg/record"
)

// chunkJob is a chunk to encode and write.
type chunkJob struct {
	cam   *recCam
	chunk record.Chunk
}

// encodeQueue is a FIFO (bounded by wait(maxQueuedChunks)) of chunks for one worker: a camera's
// state is changed under the recorder's lock, which must never wait for
// an encoder, so pushing never blocks; Record waits (outside the lock)
// while the queue is long.
type encodeQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   []chunkJob
	closed bool
}

func newEncodeQueue() *encodeQueue {
	q := &encodeQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *encodeQueue) push(j chunkJob) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.cond.Broadcast()
}

// wait blocks while more than n jobs are queued.
func (q *encodeQueue) wait(n int) {
	q.mu.Lock()
	for len(q.jobs) > n && !q.closed {
		q.cond.Wait()
	}
	q.mu.Unlock()
}

// abandon drops what is queued and lets run return after the job in
// hand: at shutdown the queued chunks are not encoded (that could take
// longer than the stop budget); their frames stay uncommitted (inflight)
// and are recorded after a restart.
func (q *encodeQueue) abandon() {
	q.mu.Lock()
	clear(q.jobs)
	q.jobs = q.jobs[:0]
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// close lets run finish what is queued and return.
func (q *encodeQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *encodeQueue) run(fn func(chunkJob)) {
	for {
		q.mu.Lock()
		for len(q.jobs) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.jobs) == 0 {
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs[0] = chunkJob{}
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		q.cond.Broadcast()
		fn(j)
	}
}
