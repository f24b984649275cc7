using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>What the results were measured on.</summary>
internal static class Machine
{
    public static string Describe()
    {
        var cpu = "unknown CPU";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException)
        {
        }

        return $"{Environment.ProcessorCount} cores ({cpu}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}, " +
            $"{FirstLine("wrk", "--version")}, redis-server {Word(FirstLine("redis-server", "--version"), 2)}";
    }

    /// <summary>The 1-, 5- and 15-minute load averages: how busy the shared machine was.</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>
    /// CPU time (user + system, all threads) the process has used so far, from /proc/PID/stat; null where that is not
    /// readable. Divided by the requests of a window it gives the server's CPU cost per request, which other work on
    /// the shared cores does not change the way it changes requests/s.
    /// </summary>
    public static TimeSpan? ProcessCpuTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// The CPU time (user + system) of a process and all its children alive now: a PostgreSQL postmaster and its backends,
    /// walwriter, checkpointer…; a backend that ended between two readings takes its time with it, so the pools are kept open.
    /// </summary>
    public static TimeSpan? ProcessTreeCpuTime(int rootPid)
    {
        var total = ProcessCpuTime(rootPid);
        if (total is null)
        {
            return null;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), System.Globalization.CultureInfo.InvariantCulture, out var pid) || pid == rootPid)
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) == rootPid && ProcessCpuTime(pid) is { } child)
                {
                    total += child;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
            }
        }

        return total;
    }

    // sysconf(_SC_CLK_TCK): 100 on every Linux this runs on.
    private const int ClockTicksPerSecond = 100;

    public static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);

    private static string Word(string line, int index)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words.Length > index ? words[index].Replace("v=", "", StringComparison.Ordinal) : line;
    }

    private static string FirstLine(string file, string args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (p is null)
            {
                return file + " (not found)";
            }

            var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit(5000);
            var line = text.Split('\n').FirstOrDefault(l => l.Trim().Length > 0) ?? file;
            var cut = line.IndexOf(" Copyright", StringComparison.Ordinal);
            return (cut > 0 ? line[..cut] : line).Trim();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return file + " (not found)";
        }
    }
}
