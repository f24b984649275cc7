using ScottPlot;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>The bar chart of requests/s for the README (ScottPlot).</summary>
internal static class Chart
{
    public static void RequestsPerSecond(Summary s, string path, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var groupWidth = s.Configs.Count + 1;
        for (var c = 0; c < s.Configs.Count; c++)
        {
            var bars = new List<Bar>();
            for (var e = 0; e < s.Endpoints.Count; e++)
            {
                if (s[s.Configs[c], s.Endpoints[e]] is not { } cell)
                {
                    continue;
                }

                bars.Add(new Bar
                {
                    Position = (e * groupWidth) + c,
                    Value = cell.RequestsPerSecond,
                    FillColor = palette.GetColor(c),
                    Label = (cell.RequestsPerSecond / 1000).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "k",
                });
            }

            var plotted = plot.Add.Bars(bars);
            plotted.LegendText = s.Configs[c];
            plotted.ValueLabelStyle.FontSize = 11;
        }

        var ticks = s.Endpoints.Select((e, i) => new Tick((i * groupWidth) + ((s.Configs.Count - 1) / 2.0), "/" + e)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 16;
        plot.Axes.Margins(bottom: 0, top: 0.12);
        plot.YLabel("requests per second");
        plot.Title(title, size: 15);
        plot.Legend.IsVisible = true;
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.Legend.FontSize = 13;
        plot.HideGrid();
        plot.Grid.YAxisStyle.IsVisible = true;
        plot.SavePng(path, 1200, 620);
    }
}
