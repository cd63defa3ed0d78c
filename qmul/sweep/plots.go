package sweep

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"

	"github.com/qmulgpu/qmulgpu/engine/atomicfile"
	"github.com/qmulgpu/qmulgpu/qmul"
)

// writePlots draws, per table, the Avg. Gap and RTE of each method (bars
// with the standard deviation over seeds) and FA against TA (one point per
// method, Retrain's in red), as PNG and SVG. It returns the PNG names per
// group slug.
func writePlots(dir string, tables []Table) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range tables {
		title := fmt.Sprintf("%s %s %s, forget %s", t.Dataset, t.Model, t.Quant, t.Forget)
		var names []string
		var gaps, gapErr, rtes, rteErr []float64
		for _, r := range t.Rows {
			if qmul.FromScratch(r.Method) {
				continue
			}
			names = append(names, r.Name)
			gaps, gapErr = append(gaps, r.Gap.Mean), append(gapErr, r.Gap.Std)
			rtes, rteErr = append(rtes, r.RTE.Mean), append(rteErr, r.RTE.Std)
		}
		var made []string
		if len(names) > 0 {
			p, err := bars("Avg. Gap to Retrain — "+title, "Avg. Gap (points)", names, gaps, gapErr)
			if err != nil {
				return nil, err
			}
			if err := save(dir, t.slug()+"-gap", p, &made); err != nil {
				return nil, err
			}
			if p, err = bars("Run time — "+title, "RTE (s)", names, rtes, rteErr); err != nil {
				return nil, err
			}
			if err := save(dir, t.slug()+"-rte", p, &made); err != nil {
				return nil, err
			}
		}
		p, err := faTA("Forget vs test accuracy — "+title, t)
		if err != nil {
			return nil, err
		}
		if err := save(dir, t.slug()+"-fa-ta", p, &made); err != nil {
			return nil, err
		}
		out[t.slug()] = made
	}
	return out, nil
}

// errBars holds bar heights with symmetric errors.
type errBars struct {
	plotter.XYs
	err []float64
}

func (e errBars) YError(i int) (float64, float64) { return e.err[i], e.err[i] }

func bars(title, ylabel string, names []string, v, std []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	b, err := plotter.NewBarChart(plotter.Values(v), vg.Points(22))
	if err != nil {
		return nil, err
	}
	b.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
	b.LineStyle.Width = 0
	xys := make(plotter.XYs, len(v))
	for i := range v {
		xys[i] = plotter.XY{X: float64(i), Y: v[i]}
	}
	eb, err := plotter.NewYErrorBars(errBars{xys, std})
	if err != nil {
		return nil, err
	}
	p.Add(b, eb)
	p.NominalX(names...)
	// Slanted method names stay legible however many bars there are.
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = text.XRight
	p.X.Tick.Label.YAlign = text.YCenter
	return p, nil
}

func faTA(title string, t Table) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "TA (%)"
	p.Y.Label.Text = "FA (%)"
	var pts plotter.XYs
	var labels []string
	var ref plotter.XYs
	for _, r := range t.Rows {
		xy := plotter.XY{X: r.TA.Mean, Y: r.FA.Mean}
		if qmul.FromScratch(r.Method) {
			ref = append(ref, xy)
		}
		pts = append(pts, xy)
		labels = append(labels, r.Name)
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle.Radius = vg.Points(3)
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
	if err != nil {
		return nil, err
	}
	p.Add(s, l)
	if len(ref) > 0 {
		rs, err := plotter.NewScatter(ref)
		if err != nil {
			return nil, err
		}
		rs.GlyphStyle.Color = color.RGBA{R: 200, A: 255}
		rs.GlyphStyle.Radius = vg.Points(5)
		p.Add(rs)
	}
	p.Add(plotter.NewGrid())
	// Pad the axes so that points and labels clear the frame.
	for _, ax := range []struct {
		a *plot.Axis
		v func(plotter.XY) float64
	}{{&p.X, func(q plotter.XY) float64 { return q.X }}, {&p.Y, func(q plotter.XY) float64 { return q.Y }}} {
		lo, hi := ax.v(pts[0]), ax.v(pts[0])
		for _, q := range pts {
			lo, hi = min(lo, ax.v(q)), max(hi, ax.v(q))
		}
		pad := max(2, 0.1*(hi-lo))
		ax.a.Min, ax.a.Max = lo-pad, hi+pad
	}
	return p, nil
}

// save writes a plot as name.png and name.svg and records the PNG.
func save(dir, name string, p *plot.Plot, made *[]string) error {
	for _, ext := range []string{"png", "svg"} {
		wt, err := p.WriterTo(7*vg.Inch, 4*vg.Inch, ext)
		if err != nil {
			return err
		}
		file := name + "." + ext
		if err := atomicfile.Write(filepath.Join(dir, file), func(w io.Writer) error {
			_, err := wt.WriteTo(w)
			return err
		}); err != nil {
			return err
		}
	}
	*made = append(*made, name+".png")
	return nil
}
