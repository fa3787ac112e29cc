// Command benchratio compares two files of `go test -bench` output, one per
// library, benchmark by benchmark: the median of every metric on each side,
// the ratio new/old, and the geometric mean of the ratios. It exists next to
// benchstat because the acceptance numbers are exactly these ratios and their
// geometric mean, and benchstat's table does not print them per metric.
//
// Usage:
//
//	benchratio [-skip prefix] old.txt new.txt
//
// A benchmark's ratio of allocations where both sides allocate nothing is 1;
// one that only the old side avoids is reported and left out of the mean.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// metric names as go test prints them.
var metrics = []string{"ns/op", "B/op", "mallocs/op"}

// samples maps benchmark name -> metric -> values, one per run.
type samples map[string]map[string][]float64

// cpuSuffix is the -GOMAXPROCS suffix go test appends to names.
var cpuSuffix = regexp.MustCompile(`-\d+$`)

func parse(path string) (samples, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := samples{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := cpuSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")
		if out[name] == nil {
			out[name] = map[string][]float64{}
			order = append(order, name)
		}
		// fields[1] is the iteration count; then value/unit pairs.
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			out[name][fields[i+1]] = append(out[name][fields[i+1]], v)
		}
	}
	return out, order, sc.Err()
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func main() {
	skip := flag.String("skip", "", "leave benchmarks with this name prefix out of the geometric means")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchratio [-skip prefix] old.txt new.txt")
		os.Exit(2)
	}
	old, _, err := parse(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cur, order, err := parse(flag.Arg(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logSum := map[string]float64{}
	count := map[string]int{}
	fmt.Printf("%-42s %4s %12s %12s %6s %9s %9s %6s %11s %11s %6s\n", "benchmark", "n",
		"old ns/op", "new ns/op", "ratio", "old B/op", "new B/op", "ratio", "old mallocs", "new mallocs", "ratio")
	for _, name := range order {
		o := old[name]
		if o == nil {
			continue
		}
		c := cur[name]
		fmt.Printf("%-42s %4d", name, min(len(o["ns/op"]), len(c["ns/op"])))
		for _, m := range metrics {
			a, b := median(o[m]), median(c[m])
			r := b / a
			if a == 0 && b == 0 {
				r = 1
			}
			w := map[string]int{"ns/op": 12, "B/op": 9, "mallocs/op": 11}[m]
			fmt.Printf(" %*.*f %*.*f %6.3f", w, digits(a), a, w, digits(b), b, r)
			if *skip != "" && strings.HasPrefix(name, *skip) {
				continue
			}
			if math.IsInf(r, 0) || math.IsNaN(r) || r == 0 {
				fmt.Fprintf(os.Stderr, "%s %s: ratio %v left out of the mean\n", name, m, r)
				continue
			}
			logSum[m] += math.Log(r)
			count[m]++
		}
		fmt.Println()
	}
	fmt.Println()
	for _, m := range metrics {
		if count[m] > 0 {
			fmt.Printf("geomean ratio new/old %-10s %.3f  (%d benchmarks)\n", m, math.Exp(logSum[m]/float64(count[m])), count[m])
		}
	}
}

// digits is how many decimals a value needs to show.
func digits(v float64) int {
	if v < 10 {
		return 2
	}
	return 0
}
