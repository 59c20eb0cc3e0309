// Command sidebyside is the Go half of sidebyside.py, which times clinfer and PyTorch on the
// same encoder shape in alternation, one forward pass each, so that both see the same minute
// of a shared machine. On the 2-core development VM the speed of one binary moves by 20-40 %
// from minute to minute; medians of whole benchmark runs taken a minute apart cannot show a
// 10 % difference, per-pair ratios can.
//
// Protocol (stdin/stdout, one line each): "MODEL BATCH LENGTH" runs one forward pass of the
// random-weight model (bert or xlmr, built on first use) and answers the wall time in
// milliseconds; "quit" ends. Nothing else is printed on stdout.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/clinfer/clinfer/benchmarks"
	"github.com/clinfer/clinfer/bert"
	"github.com/clinfer/clinfer/tensorops"
	"github.com/clinfer/clinfer/weights"
)

func main() {
	threads := flag.Int("threads", runtime.NumCPU(), "engine threads (and GOMAXPROCS)")
	flag.Parse()
	runtime.GOMAXPROCS(*threads)
	configs := map[string]func() *weights.Config{"bert": benchmarks.BertBase, "xlmr": benchmarks.XLMRLarge}
	if err := serve(os.Stdin, os.Stdout, configs, tensorops.NewEngine(*threads)); err != nil {
		log.Fatal(err)
	}
}

// serve answers each "MODEL BATCH LENGTH" line of r with the wall time of one forward pass in
// milliseconds, until "quit" or the end of r. Models are built on first use.
func serve(r io.Reader, w io.Writer, configs map[string]func() *weights.Config, eng *tensorops.Engine) error {
	models := map[string]*bert.Model{}
	in := bufio.NewScanner(r)
	out := bufio.NewWriter(w)
	for in.Scan() {
		if in.Text() == "quit" {
			return nil
		}
		var name string
		var b, t int
		if _, err := fmt.Sscan(in.Text(), &name, &b, &t); err != nil || b < 1 || t < 1 {
			return fmt.Errorf("sidebyside: want \"MODEL BATCH LENGTH\", got %q", in.Text())
		}
		m := models[name]
		if m == nil {
			cfg, ok := configs[name]
			if !ok {
				return fmt.Errorf("sidebyside: unknown model %q", name)
			}
			var err error
			if m, err = bert.NewRandom(cfg(), 1, bert.WithEngine(eng)); err != nil {
				return err
			}
			models[name] = m
		}
		batch := benchmarks.BenchBatch(b, t)
		start := time.Now()
		if _, err := m.Forward(context.Background(), batch); err != nil {
			return err
		}
		fmt.Fprintf(out, "%.3f\n", float64(time.Since(start).Microseconds())/1e3)
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}
