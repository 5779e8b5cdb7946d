// Command kvdclientcheck runs redigo against a server as its users write it
// (tests/clients/README.md).
//
// Usage: kvdclientcheck HOST PORT. Built in GOPATH mode against Debian's
// golang-github-gomodule-redigo-dev (GO111MODULE=off GOPATH=tests/clients/go:/usr/share/gocode).
// Prints one line per step and `OK` last; any mismatch exits non-zero. redigo speaks
// RESP2 only and has no client-side cache; tracking is exercised by hand, CLIENT TRACKING
// with REDIRECT to a connection subscribed to `__redis__:invalidate` (read with
// Conn.Receive: redigo's PubSubConn cannot decode that channel's key lists).
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
)

// timeout bounds any one reply or message: a hang is a failure, not a wait.
const timeout = 10 * time.Second

var addr string

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func expect(what string, got, want interface{}) {
	if !reflect.DeepEqual(got, want) {
		fail("%s: got %#v, want %#v", what, got, want)
	}
	fmt.Println(what, "ok")
}

func must(what string, err error) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func connect() redis.Conn {
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(timeout),
		redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	must("connect", err)
	return c
}

// str is a reply as a string; an error reply or any other failure ends the program.
func str(reply interface{}, err error) string {
	s, err := redis.String(reply, err)
	must("reply", err)
	return s
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: kvdclientcheck HOST PORT")
	}
	addr = net.JoinHostPort(os.Args[1], os.Args[2])
	r := connect()
	other := connect()
	expect("connect", str(r.Do("PING")), "PONG")
	str(r.Do("FLUSHALL")) // start empty, so the program may run again on one server

	key := []byte("bin\x00key\xff")
	binary := make([]byte, 0, 262)
	for i := 0; i < 256; i++ {
		binary = append(binary, byte(i))
	}
	binary = append(binary, []byte("\r\n\x00end")...)
	str(r.Do("SET", key, binary))
	got, err := redis.Bytes(r.Do("GET", key))
	must("GET", err)
	expect("binary set/get", bytes.Equal(got, binary), true)

	pipeline(r)
	watchRetry(r, other)
	errorReplies(r)
	pubSub(other, binary)
	tracking(r, other)
	fmt.Println("OK")
}

// pipeline sends 1001 commands with Send, one Flush, then reads every reply.
func pipeline(r redis.Conn) {
	for i := 0; i < 500; i++ {
		must("Send", r.Send("SET", fmt.Sprintf("p:%d", i), i))
	}
	for i := 0; i < 500; i++ {
		must("Send", r.Send("GET", fmt.Sprintf("p:%d", i)))
	}
	must("Send", r.Send("INCR", "p:counter"))
	must("Flush", r.Flush())
	for i := 0; i < 500; i++ {
		if s := str(r.Receive()); s != "OK" {
			fail("pipeline SET %d: %q", i, s)
		}
	}
	for i := 0; i < 500; i++ {
		if s := str(r.Receive()); s != strconv.Itoa(i) {
			fail("pipeline GET %d: %q", i, s)
		}
	}
	fmt.Println("pipeline sets ok")
	n, err := redis.Int(r.Receive())
	must("INCR", err)
	expect("pipeline incr", n, 1)
}

// watchRetry runs a WATCH/MULTI/EXEC loop; on the first attempt `other` changes the
// watched key between WATCH and EXEC, so EXEC answers nil and the loop retries.
func watchRetry(r, other redis.Conn) {
	str(r.Do("SET", "balance", 100))
	attempts := 0
	for {
		attempts++
		if attempts > 5 {
			fail("WATCH retry did not commit in 5 attempts")
		}
		str(r.Do("WATCH", "balance"))
		balance, err := redis.Int(r.Do("GET", "balance"))
		must("GET", err)
		if attempts == 1 {
			_, err := other.Do("INCRBY", "balance", 50)
			must("INCRBY", err)
		}
		must("MULTI", r.Send("MULTI"))
		must("SET", r.Send("SET", "balance", balance-30))
		replies, err := redis.Values(r.Do("EXEC"))
		if err == redis.ErrNil {
			continue // aborted: the watched key changed
		}
		must("EXEC", err)
		expect("exec replies", replies, []interface{}{"OK"})
		break
	}
	expect("watch retry attempts", attempts, 2)
	expect("watch retry result", str(r.Do("GET", "balance")), "120")
}

// errorReplies checks that error replies come back as redis.Error and the connection
// keeps working.
func errorReplies(r redis.Conn) {
	str(r.Do("SET", "text", "not a number"))
	_, err := r.Do("INCR", "text")
	if e, ok := err.(redis.Error); !ok || e.Error() != "ERR value is not an integer or out of range" {
		fail("INCR of a non-integer: %#v", err)
	}
	fmt.Println("error reply ok")
	_, err = r.Do("GET", "a", "b")
	if e, ok := err.(redis.Error); !ok || e.Error() != "ERR wrong number of arguments for 'get' command" {
		fail("GET with two keys: %#v", err)
	}
	fmt.Println("arity error ok")
	expect("connection usable after errors", str(r.Do("GET", "text")), "not a number")
}

func receive(psc redis.PubSubConn, what string) interface{} {
	switch m := psc.ReceiveWithTimeout(timeout).(type) {
	case error:
		fail("%s: %v", what, m)
		return nil
	default:
		return m
	}
}

func pubSub(other redis.Conn, binary []byte) {
	psc := redis.PubSubConn{Conn: connect()}
	defer psc.Close()
	must("SUBSCRIBE", psc.Subscribe("news"))
	expect("subscribe", receive(psc, "subscribe"), redis.Subscription{Kind: "subscribe", Channel: "news", Count: 1})
	n, err := redis.Int(other.Do("PUBLISH", "news", binary))
	must("PUBLISH", err)
	expect("publish receivers", n, 1)
	expect("message", receive(psc, "message"), redis.Message{Channel: "news", Data: binary})
	must("PSUBSCRIBE", psc.PSubscribe("n*"))
	receive(psc, "psubscribe")
	n, err = redis.Int(other.Do("PUBLISH", "news", "x"))
	must("PUBLISH", err)
	expect("publish to channel and pattern", n, 2)
	expect("message then pmessage", []interface{}{receive(psc, "message"), receive(psc, "pmessage")},
		[]interface{}{redis.Message{Channel: "news", Data: []byte("x")},
			redis.Message{Pattern: "n*", Channel: "news", Data: []byte("x")}})
}

func tracking(r, other redis.Conn) {
	inval := connect()
	defer inval.Close()
	id, err := redis.Int(inval.Do("CLIENT", "ID"))
	must("CLIENT ID", err)
	confirmation, err := redis.Values(inval.Do("SUBSCRIBE", "__redis__:invalidate"))
	must("SUBSCRIBE", err)
	expect("subscribe invalidations", len(confirmation), 3)
	str(r.Do("CLIENT", "TRACKING", "ON", "REDIRECT", id))
	expect("tracked read", str(r.Do("GET", "balance")), "120")
	str(other.Do("SET", "balance", 0))
	msg, err := redis.Values(inval.Receive())
	must("invalidation", err)
	if len(msg) != 3 {
		fail("invalidation: %#v", msg)
	}
	kind, _ := redis.String(msg[0], nil)
	channel, _ := redis.String(msg[1], nil)
	keys, err := redis.Strings(msg[2], nil)
	must("invalidation keys", err)
	expect("invalidation", []interface{}{kind, channel, keys},
		[]interface{}{"message", "__redis__:invalidate", []string{"balance"}})
}
