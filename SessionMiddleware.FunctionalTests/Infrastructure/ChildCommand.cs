using System.Diagnostics;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Runs a command (dotnet build, dotnet publish) to its end and returns its exit code and output.</summary>
internal static class ChildCommand
{
    /// <summary>Runs <paramref name="command"/> in <paramref name="workingDirectory"/>, killed with its children past <paramref name="timeout"/>.</summary>
    /// <param name="command">The program.</param>
    /// <param name="workingDirectory">Where it runs.</param>
    /// <param name="timeout">How long it may take; past it the exit code is -1 and the output says so.</param>
    /// <param name="args">Its arguments.</param>
    /// <returns>The exit code, and standard output followed by standard error.</returns>
    public static async Task<(int ExitCode, string Output)> RunAsync(string command, string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo(command)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{command} {string.Join(' ', args)} did not finish in {timeout}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
