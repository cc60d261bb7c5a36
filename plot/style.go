package plot

import (
	"image/color"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// seriesPalette holds the series colours: the ten of the widely used
// "category 10" set, then black and a dark indigo. Every pair differs by at least 27
// in CIELAB ΔE (the closest are purple/pink and brown/grey), and each stands
// out from the white background (the palest, grey, by ΔE 47).
var seriesPalette = []color.NRGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x7f, 0x7f, 0x7f, 0xff}, // grey
	{0xbc, 0xbd, 0x22, 0xff}, // olive
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
	{0x00, 0x00, 0x00, 0xff}, // black
	{0x1a, 0x23, 0x7e, 0xff}, // indigo
}

// Line patterns (dash, gap, ...) for series past the palette: the first 12
// series are solid, the next 12 dotted, then dash-dotted, then long-dashed;
// after 48 series the styles repeat. A series with Dashed set is drawn with
// dashedPattern instead, which none of these is.
var (
	cyclePatterns = [][]vg.Length{
		nil,
		{vg.Points(1.5), vg.Points(2.5)},
		{vg.Points(7), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
		{vg.Points(12), vg.Points(4)},
	}
	dashedPattern = []vg.Length{vg.Points(6), vg.Points(3)}
)

// legendThumbWidth is the length of the line sample in a legend, enough to
// show a full cycle of every pattern.
const legendThumbWidth = vg.Length(28)

// seriesColor is the colour of the i-th series of a figure.
func seriesColor(i int) color.Color { return seriesPalette[i%len(seriesPalette)] }

// seriesDashes is the automatic line pattern of the i-th series (nil:
// solid).
func seriesDashes(i int) []vg.Length {
	return cyclePatterns[(i/len(seriesPalette))%len(cyclePatterns)]
}

// lineStyle is the line of the i-th series: its colour, and its automatic
// pattern or, if dashed, the dashed one.
func lineStyle(i int, dashed bool) draw.LineStyle {
	s := draw.LineStyle{Color: seriesColor(i), Width: lineWidth, Dashes: seriesDashes(i)}
	if dashed {
		s.Dashes = dashedPattern
	}
	return s
}
