# Prints the timestamp of the newest migration in db/migrations (or the
# folder given as the first argument). Rollbacks read it from an older
# image to know how far back to migrate. Standard library only.
folder = ARGV[0]? || "db/migrations"

unless Dir.exists?(folder)
  STDERR.puts "last_migration: #{folder} not found"
  exit 1
end

stamps = Dir.children(folder).compact_map { |name| name[/\A\d{14}(?=_)/]? }
if stamps.empty?
  STDERR.puts "last_migration: no migration in #{folder}"
  exit 1
end
puts stamps.max
